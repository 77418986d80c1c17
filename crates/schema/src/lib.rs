//! appc 0.8.11 types for Vessel: image and pod manifests, the names, labels
//! and isolators inside them, and the conversion of OCI image configs into
//! appc apps. Pure: no file system, no network.
//!
//! Every type validates itself when parsed or built, so a value of these
//! types is a valid one. Manifests parse with `from_slice`, which reports
//! the offending field and value:
//!
//! ```
//! let err = schema::ImageManifest::from_slice(
//!     br#"{"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "Foo Bar"}"#,
//! )
//! .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"manifest field "name": "Foo Bar" is not a valid AC identifier"#
//! );
//! ```
//!
//! Types with pub fields can be edited in code; their `validate()` checks
//! the rules that span fields, and `to_vec`/`to_string_pretty` run it
//! before writing.

mod json;

pub mod annotations;
mod app;
pub mod app_name;
mod dependency;
mod environment;
mod error;
mod event_handler;
mod exec;
mod hash;
mod identifier;
pub mod ids;
mod image_manifest;
pub mod isolator;
pub mod labels;
mod mount_point;
mod name;
pub mod oci;
pub mod os_arch;
mod pod_manifest;
mod port;
mod quantity;
pub mod text;
mod version;
mod volume;

pub use annotations::{Annotation, Annotations};
pub use app::App;
pub use app_name::app_name_for_image;
pub use dependency::Dependency;
pub use environment::{EnvVar, Environment};
pub use error::SchemaError;
pub use event_handler::{EventHandler, EventHandlerName};
pub use exec::{Exec, ProgramLookup};
pub use hash::{Hash, HashAlgorithm};
pub use identifier::AcIdentifier;
pub use image_manifest::{ImageManifest, IMAGE_MANIFEST_KIND};
pub use isolator::{Isolator, Isolators, TypedIsolator};
pub use labels::{Label, Labels};
pub use mount_point::MountPoint;
pub use name::AcName;
pub use pod_manifest::{Mount, PodManifest, RuntimeApp, RuntimeImage, POD_MANIFEST_KIND};
pub use port::{ExposedPort, Port};
pub use quantity::Quantity;
pub use version::{AcVersion, SPEC_VERSION};
pub use volume::{Volume, VolumeKind};
