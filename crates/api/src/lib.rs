//! rkt's API service (`api-service`, gRPC, API v1alpha: the vendored
//! `proto/v1alpha/api.proto`, same package, services, messages and field numbers), so
//! rkt's API clients work unchanged. Read-only: it reads the store and the pod
//! directories, and no pod depends on it running.
//!
//! | module | job |
//! |---|---|
//! | `pods` | pod directories → `v1alpha.Pod`, pod filters |
//! | `podcache` | each pod's state and manifest as last read, kept while unchanged |
//! | `images` | store records → `v1alpha.Image`, image filters |
//! | `events` | inotify on the pod and image directories, pidfds of pods' inits → `Event`s |
//! | `logs` | apps' log files, their last lines, following them |
//! | `service` | the `PublicAPI` implementation |
//! | `server` | listener (own or socket-activated), tonic, shutdown |

pub mod events;
pub mod images;
pub mod logs;
pub mod podcache;
pub mod pods;
pub mod server;
pub mod service;

/// The generated messages and services.
pub mod v1alpha {
    tonic::include_proto!("v1alpha");
}

/// The API version this service speaks (rkt's).
pub const API_VERSION: &str = "1.0.0-alpha";
/// rkt's default address.
pub const DEFAULT_LISTEN: &str = "localhost:15441";

/// Nanoseconds since the epoch, 0 for none (the API's pod timestamps).
pub(crate) fn nanos(t: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    t.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0)
}
