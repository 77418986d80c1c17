//! The pod init's reports to the supervisor: one line per event on a pipe.
//!
//! ```text
//! started <app> <pid-in-pod>
//! failed <app> <exec|setup> <errno, 0 for none> <message>
//! exited <app> <wait status>
//! error <message>
//! done
//! ```
//!
//! `done` is the init's last word: every app has been reaped and reported. The supervisor
//! may then finish without waiting for the init's exit, which takes the pod's mount and
//! network namespaces down first (a fraction of a millisecond it need not wait for).

use std::fmt;

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        app: usize,
        pid: i32,
    },
    /// The app could not start: the failing step's error, with its errno and whether it
    /// was the exec of the command (the exit code comes from those, never from the text).
    Failed {
        app: usize,
        error: Error,
    },
    Exited {
        app: usize,
        status: i32,
    },
    Error {
        message: String,
    },
    /// Something the user should know that does not stop the pod (a mount hiding files).
    Warning {
        message: String,
    },
    /// Every app was reaped and reported; the init exits next.
    Done,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started { app, pid } => writeln!(f, "started {app} {pid}"),
            Event::Failed { app, error } => writeln!(
                f,
                "failed {app} {} {} {}",
                if error.is_exec() { "exec" } else { "setup" },
                error.errno().unwrap_or(0),
                one_line(&error.to_string())
            ),
            Event::Exited { app, status } => writeln!(f, "exited {app} {status}"),
            Event::Error { message } => writeln!(f, "error {}", one_line(message)),
            Event::Warning { message } => writeln!(f, "warning {}", one_line(message)),
            Event::Done => writeln!(f, "done"),
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

impl Event {
    pub fn parse(line: &str) -> Option<Event> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let num_then = |rest: &str| -> Option<(usize, String)> {
            let (n, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((n.parse().ok()?, tail.to_string()))
        };
        match word {
            "started" => {
                let (app, pid) = num_then(rest)?;
                Some(Event::Started {
                    app,
                    pid: pid.parse().ok()?,
                })
            }
            "failed" => {
                let (app, rest) = num_then(rest)?;
                let (step, rest) = rest.split_once(' ')?;
                let (errno, message) = num_then(rest)?;
                let exec = match step {
                    "exec" => true,
                    "setup" => false,
                    _ => return None,
                };
                let errno = i32::try_from(errno).ok().filter(|e| *e != 0);
                Some(Event::Failed {
                    app,
                    error: Error::reported(message, errno, exec),
                })
            }
            "exited" => {
                let (app, status) = num_then(rest)?;
                Some(Event::Exited {
                    app,
                    status: status.parse().ok()?,
                })
            }
            "error" => Some(Event::Error {
                message: rest.to_string(),
            }),
            "warning" => Some(Event::Warning {
                message: rest.to_string(),
            }),
            "done" if rest.is_empty() => Some(Event::Done),
            _ => None,
        }
    }
}

/// How an app ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number, as shells report it.
    pub code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn from_wait(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            ExitStatus {
                code: 128 + sig,
                signal: Some(sig),
            }
        } else {
            ExitStatus {
                code: libc::WEXITSTATUS(status),
                signal: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for e in [
            Event::Started { app: 0, pid: 7 },
            Event::Failed {
                app: 1,
                error: Error::exec("exec /x", libc::ENOENT).wrap("two\nlines"),
            },
            Event::Exited { app: 2, status: 9 },
            Event::Error {
                message: "boom".into(),
            },
            Event::Done,
        ] {
            let line = e.to_string();
            let back = Event::parse(line.trim_end()).unwrap();
            match (&e, &back) {
                (Event::Failed { error: a, .. }, Event::Failed { error: b, .. }) => {
                    assert_eq!(a.to_string().replace('\n', " "), b.to_string());
                    assert_eq!((a.errno(), a.is_exec()), (b.errno(), b.is_exec()));
                    assert_eq!(b.start_failure_code(), 127);
                }
                _ => assert_eq!(e, back),
            }
        }
        assert_eq!(Event::parse("nonsense"), None);
    }

    #[test]
    fn exit_status() {
        assert_eq!(
            ExitStatus::from_wait(3 << 8),
            ExitStatus {
                code: 3,
                signal: None
            }
        );
        assert_eq!(
            ExitStatus::from_wait(9),
            ExitStatus {
                code: 137,
                signal: Some(9)
            }
        );
    }
}
