//! Importers: each turns one kind of local image source into store content.

pub mod aci;
pub mod archive;
pub mod layout;
pub mod oci;
