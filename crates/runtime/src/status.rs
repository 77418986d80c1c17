//! The container state machine, as runc has it.
//!
//! ```text
//!            create                start                 (process exits)
//!   (none) ─────────▶ created ─────────────▶ running ─────────────────────▶ stopped
//!                       │  ▲                   │  ▲                           │
//!                       │  └─────resume────────┼──┘ pause                     │
//!                       │            paused ◀──┘                              │
//!                       └───────────(process dies before start)──────────────▶│
//!                                                              delete ────────┘──▶ (none)
//! ```
//!
//! | command | creating | created | running | paused | stopped |
//! |---|---|---|---|---|---|
//! | start | no | yes | no | no | no |
//! | kill | no | yes | yes | yes | no ("container not running"; `--all` yes) |
//! | delete | no | yes (kills it) | `--force` | `--force` | yes |
//! | exec | no | yes | yes | no | no |
//! | pause | no | yes | yes | no | no |
//! | resume | no | no | no | yes | no |
//! | update, ps, events | no | yes | yes | yes | no |
//! | state, list | always | | | | |
//!
//! `creating` is a container whose `create` has not finished (its directory is still
//! under a hidden name, or its process has not reported ready); nothing but `state` and
//! `delete --force` may touch it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that acts on an existing container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Kill { all: bool },
    Delete { force: bool },
    Exec,
    Pause,
    Resume,
    Update,
    Ps,
    Events,
}

/// What `delete` has to do in a state it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Go ahead.
    Yes,
    /// Kill the container's processes first (delete of a created container, or --force).
    KillFirst,
}

/// Whether `op` may act on a container in `status`; the error carries runc's wording.
pub fn check(op: Op, status: Status, id: &str) -> Result<Allowed, crate::error::RuntimeError> {
    use Status::*;
    let allowed = match (op, status) {
        (Op::Delete { force: true }, Creating | Running | Paused) => Some(Allowed::KillFirst),
        (Op::Delete { .. }, Created) => Some(Allowed::KillFirst),
        (Op::Delete { .. }, Stopped) => Some(Allowed::Yes),
        (Op::Start, Created) => Some(Allowed::Yes),
        (Op::Kill { .. }, Created | Running | Paused) => Some(Allowed::Yes),
        // runc: signalling every process of a stopped container is not an error (there
        // may be none left, or some the init left behind).
        (Op::Kill { all: true }, Stopped) => Some(Allowed::Yes),
        (Op::Exec, Created | Running) => Some(Allowed::Yes),
        (Op::Pause, Created | Running) => Some(Allowed::Yes),
        (Op::Resume, Paused) => Some(Allowed::Yes),
        (Op::Update | Op::Ps | Op::Events, Created | Running | Paused) => Some(Allowed::Yes),
        _ => None,
    };
    allowed.ok_or_else(|| crate::error::RuntimeError::NotAllowed {
        op,
        status,
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 5] = [Creating, Created, Running, Paused, Stopped];

    fn allowed_in(op: Op) -> Vec<Status> {
        ALL.into_iter()
            .filter(|s| check(op, *s, "c").is_ok())
            .collect()
    }

    #[test]
    fn the_table() {
        assert_eq!(allowed_in(Op::Start), [Created]);
        assert_eq!(
            allowed_in(Op::Kill { all: false }),
            [Created, Running, Paused]
        );
        assert_eq!(
            allowed_in(Op::Kill { all: true }),
            [Created, Running, Paused, Stopped]
        );
        assert_eq!(allowed_in(Op::Delete { force: false }), [Created, Stopped]);
        assert_eq!(allowed_in(Op::Delete { force: true }), ALL);
        assert_eq!(allowed_in(Op::Exec), [Created, Running]);
        assert_eq!(allowed_in(Op::Pause), [Created, Running]);
        assert_eq!(allowed_in(Op::Resume), [Paused]);
        for op in [Op::Update, Op::Ps, Op::Events] {
            assert_eq!(allowed_in(op), [Created, Running, Paused], "{op:?}");
        }
    }

    #[test]
    fn delete_kills_what_still_runs() {
        assert_eq!(
            check(Op::Delete { force: false }, Created, "c").unwrap(),
            Allowed::KillFirst
        );
        assert_eq!(
            check(Op::Delete { force: true }, Running, "c").unwrap(),
            Allowed::KillFirst
        );
        assert_eq!(
            check(Op::Delete { force: false }, Stopped, "c").unwrap(),
            Allowed::Yes
        );
    }

    #[test]
    fn refusals_in_runcs_words() {
        let msg = |op, s| check(op, s, "web").unwrap_err().to_string();
        assert_eq!(
            msg(Op::Start, Stopped),
            "cannot start a container that has stopped"
        );
        assert_eq!(
            msg(Op::Start, Running),
            "cannot start an already running container"
        );
        assert_eq!(
            msg(Op::Start, Paused),
            "cannot start a container in the paused state"
        );
        assert_eq!(
            msg(Op::Delete { force: false }, Running),
            "cannot delete container web that is not stopped: running"
        );
        assert_eq!(
            msg(Op::Kill { all: false }, Stopped),
            "container not running"
        );
        assert_eq!(msg(Op::Resume, Running), "container not paused");
        assert_eq!(msg(Op::Pause, Stopped), "container not running");
        assert_eq!(msg(Op::Exec, Paused), "cannot exec in a paused container");
    }
}
