//! The appc metadata service (ace.md, "App Container Metadata Service"): apps in a pod
//! learn their pod's and images' manifests, annotations and UUID over HTTP, and sign and
//! verify with their pod's identity. A pod is known by the source address of its request
//! among the pods registered with the service.
//!
//! | module | job | runs in |
//! |---|---|---|
//! | `paths` | every path of the service under /run/vessel | both |
//! | `proto` | the registration protocol: one JSON line each way over a unix socket | both |
//! | `client` | registering and unregistering a pod (blocking, std only) | `vessel run`, `gc` |
//! | `keys` | the service key and each pod's HMAC-SHA512 key derived from it | service |
//! | `registry` | registered pods by address and UUID, kept on disk across restarts | service |
//! | `routes` | the endpoints: a request and its pod in, a response out (no I/O) | service |
//! | `server` | listeners (own or socket-activated), HTTP, registrations, registrants' deaths | service |
//!
//! `vessel run` only ever uses `client` and `proto`: no async runtime on the run path.

pub mod client;
pub mod keys;
pub mod paths;
pub mod proto;
pub mod registry;
pub mod routes;
pub mod server;

/// rkt's port for the metadata service.
pub const DEFAULT_PORT: u16 = 18112;
