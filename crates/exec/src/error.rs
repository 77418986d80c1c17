//! One error contract for exec's process code, as crun's `crun_make_error` and
//! `crun_error_wrap`: a failed step says what it was doing (the outermost context first:
//! "app web: mounting proc on /proc") and keeps the errno when the kernel refused, so that
//! callers decide from numbers, never from text: the exit codes of an app that could not
//! start (docker's 127 not found, 126 not executable, 125 anything else) come from
//! [`Error::start_failure_code`]. The errno also crosses the status channel to the
//! supervisor (`proto::Event::Failed`).
//!
//! Wrap a result with [`Context::ctx`] (or `with_ctx` for a message built only on
//! failure); wrapping an [`Error`] again prefixes its context and keeps its errno.

use std::fmt;
use std::io;

/// What failed, where, and the kernel's errno if it was the kernel that refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: String,
    errno: Option<i32>,
    reason: Option<String>,
    exec: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The kernel refused `what` with `errno`.
    pub fn os(what: impl Into<String>, errno: i32) -> Error {
        Error {
            what: what.into(),
            errno: Some(errno),
            reason: None,
            exec: false,
        }
    }

    /// A whole message of ours, no errno: "`message`".
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            what: message.into(),
            errno: None,
            reason: None,
            exec: false,
        }
    }

    /// `what` failed for a reason of ours (a bad plan, a dangling symlink), not an errno.
    pub fn msg(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error {
            what: what.into(),
            errno: None,
            reason: Some(reason.into()),
            exec: false,
        }
    }

    /// The last error of the calling thread, for `what`.
    pub fn last_os(what: impl Into<String>) -> Error {
        Error::os(
            what,
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    /// The exec of the app's command failed with `errno`: the failure that exit codes 126
    /// and 127 describe.
    pub fn exec(what: impl Into<String>, errno: i32) -> Error {
        Error {
            exec: true,
            ..Error::os(what, errno)
        }
    }

    /// An error another process reported (over the status channel or a socket): its
    /// text as that process wrote it, and its numbers.
    pub fn reported(text: impl Into<String>, errno: Option<i32>, exec: bool) -> Error {
        Error {
            what: String::new(),
            errno,
            reason: Some(text.into()),
            exec,
        }
    }

    /// Adds context in front: "`outer`: what".
    pub fn wrap(mut self, outer: impl fmt::Display) -> Error {
        self.what = format!("{outer}: {}", self.what);
        self
    }

    /// The error as bytes for another process (an app's error pipe, the first process's
    /// last message): whether exec failed (1 byte), the errno (4 bytes, little-endian, 0
    /// for none), the text.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.exec as u8];
        out.extend_from_slice(&self.errno.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(self.to_string().as_bytes());
        out
    }

    /// Reads what [`Error::encode`] wrote; None for anything shorter than its header.
    pub fn decode(bytes: &[u8]) -> Option<Error> {
        let (&exec, rest) = bytes.split_first()?;
        let errno = i32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let text = String::from_utf8_lossy(&rest[4..]).into_owned();
        Some(Error::reported(
            text,
            (errno != 0).then_some(errno),
            exec == 1,
        ))
    }

    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// Whether the failing step was the exec of the app's command.
    pub fn is_exec(&self) -> bool {
        self.exec
    }

    /// docker's convention for a command that could not run: 127 when it was not found,
    /// 126 when it was found but could not be executed, 125 for any other failure to start.
    pub fn start_failure_code(&self) -> i32 {
        start_failure_code(self.exec, self.errno)
    }
}

/// [`Error::start_failure_code`] from the two facts it depends on.
pub fn start_failure_code(exec: bool, errno: Option<i32>) -> i32 {
    match (exec, errno) {
        (true, Some(libc::ENOENT) | Some(libc::ENOTDIR)) => 127,
        (true, _) => 126,
        (false, _) => 125,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if self.what.is_empty() { "" } else { ": " };
        match (&self.reason, self.errno) {
            (Some(r), _) => write!(f, "{}{sep}{r}", self.what),
            (None, Some(e)) => write!(f, "{}{sep}{}", self.what, io::Error::from_raw_os_error(e)),
            (None, None) => f.write_str(&self.what),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e.errno {
            Some(n) => io::Error::from_raw_os_error(n).kind(),
            None => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Turns what a step returned into an [`Error`] that says what the step was.
pub trait Context<T> {
    fn ctx(self, what: impl fmt::Display) -> Result<T>;

    /// `ctx`, with the context built only on failure.
    fn with_ctx<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

/// A failure a step can return, made into an [`Error`] under `what` (empty: no context).
pub trait IntoError {
    fn into_error(self, what: String) -> Error;
}

impl<T, E: IntoError> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into_error(what.to_string()))
    }

    fn with_ctx<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into_error(what().to_string()))
    }
}

impl IntoError for Error {
    fn into_error(self, what: String) -> Error {
        if what.is_empty() {
            self
        } else {
            self.wrap(what)
        }
    }
}

/// An io::Error keeps its errno; one made of a message (io::Error::other) keeps the
/// message, and an Error carried inside one comes back out whole.
impl IntoError for io::Error {
    fn into_error(self, what: String) -> Error {
        if let Some(n) = self.raw_os_error() {
            return Error::os(what, n);
        }
        match self.into_inner() {
            Some(inner) => match inner.downcast::<Error>() {
                Ok(ours) => ours.into_error(what),
                Err(other) => Error::msg(what, other.to_string()),
            },
            None => Error::msg(what, "unknown error"),
        }
    }
}

impl IntoError for rustix::io::Errno {
    fn into_error(self, what: String) -> Error {
        Error::os(what, self.raw_os_error())
    }
}

impl IntoError for nix::errno::Errno {
    fn into_error(self, what: String) -> Error {
        Error::os(what, self as i32)
    }
}

/// A cgroup error names its file; its errno, when the kernel refused, is kept.
impl IntoError for crate::cgroups::CgroupError {
    fn into_error(self, what: String) -> Error {
        use std::error::Error as _;
        let errno = self
            .source()
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        // Its message says what and why already; the errno stays for callers to test.
        Error {
            what,
            errno,
            reason: Some(self.to_string()),
            exec: false,
        }
    }
}

impl IntoError for crate::caps::ApplyError {
    fn into_error(self, what: String) -> Error {
        Error::os(self.step, self.errno as i32).into_error(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errno_survives_every_wrap() {
        let e: Result<()> = Err(io::Error::from_raw_os_error(libc::ENOENT)).ctx("chdir /x");
        let e = e.ctx("app web").unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert_eq!(
            e.to_string(),
            "app web: chdir /x: No such file or directory (os error 2)"
        );
        // Through an io::Error and back.
        let io: io::Error = e.clone().into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        let back = Err::<(), _>(io).ctx("starting the pod").unwrap_err();
        assert_eq!(back.errno(), Some(libc::ENOENT));
        assert!(back
            .to_string()
            .starts_with("starting the pod: app web: chdir /x"));
    }

    #[test]
    fn an_error_crosses_to_another_process_whole() {
        let e = Error::exec("exec /bin/x", libc::EACCES).wrap("app web");
        let back = Error::decode(&e.encode()).unwrap();
        assert_eq!(back.to_string(), e.to_string());
        assert_eq!((back.errno(), back.is_exec()), (Some(libc::EACCES), true));
        assert_eq!(back.start_failure_code(), 126);
        let plain = Error::decode(&Error::msg("user", "unknown").encode()).unwrap();
        assert_eq!((plain.errno(), plain.is_exec()), (None, false));
        assert_eq!(Error::decode(b"\x01ab"), None);
    }

    #[test]
    fn start_failure_codes_come_from_the_step_and_errno() {
        assert_eq!(
            Error::exec("exec /x", libc::ENOENT).start_failure_code(),
            127
        );
        assert_eq!(
            Error::exec("exec /x", libc::EACCES).start_failure_code(),
            126
        );
        assert_eq!(
            Error::exec("exec /x", libc::ENOEXEC).start_failure_code(),
            126
        );
        // Not found, but not the command: the working directory.
        assert_eq!(
            Error::os("working directory /x", libc::ENOENT).start_failure_code(),
            125
        );
        assert_eq!(Error::msg("user", "no such user").start_failure_code(), 125);
    }

    #[test]
    fn other_sources_keep_their_numbers_or_words() {
        let e = Err::<(), _>(rustix::io::Errno::PERM)
            .ctx("mount")
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EPERM));
        let e = Err::<(), _>(nix::errno::Errno::EBUSY)
            .ctx("umount")
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::EBUSY));
        let e = Err::<(), _>(io::Error::other("a dangling symlink"))
            .ctx("/proc")
            .unwrap_err();
        assert_eq!(
            (e.errno(), e.to_string().as_str()),
            (None, "/proc: a dangling symlink")
        );
        let e = Err::<(), _>(io::Error::from_raw_os_error(libc::EACCES))
            .with_ctx(|| format!("open {}", "/etc"))
            .unwrap_err();
        assert_eq!(e.to_string(), "open /etc: Permission denied (os error 13)");
    }
}
