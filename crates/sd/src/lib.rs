//! systemd's two process protocols, spoken without systemd (these hosts do not run it as
//! PID 1, and a unit's process needs none of its libraries): `sd_notify` (a datagram to
//! `$NOTIFY_SOCKET`) and socket activation (`$LISTEN_PID`, `$LISTEN_FDS`,
//! `$LISTEN_FDNAMES`, descriptors from 3 on). Standard library only: `vessel run` uses it.

pub mod listen;
pub mod notify;

pub use listen::{take_listen_fds, ListenFd, ListenFds};
pub use notify::{notify, NotifySocket};
