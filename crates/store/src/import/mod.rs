//! Importers: each turns one kind of image source into store content.

pub mod aci;
pub mod archive;
pub mod layout;
pub mod oci;
pub mod parallel;
pub mod remote;
pub mod trace;
