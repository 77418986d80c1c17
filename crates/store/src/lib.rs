//! Vessel's image store: content-addressed blobs, images, and layers extracted once and
//! shared between images. See docs/architecture.md, "Store".

pub mod appc;
pub mod datadir;
pub mod decompress;
pub mod digest;
pub mod error;
pub mod extract;
pub mod fsutil;
pub mod gc;
pub mod images;
pub mod import;
pub mod layers;
pub mod lock;
pub mod render;
pub mod store;
pub mod tree;
pub mod userns;
pub mod verify;

pub use digest::Digest;
pub use error::{Result, StoreError};
pub use store::Store;
