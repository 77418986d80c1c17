//! A command to exec with the app's environment, found in PATH as execvp would, with its
//! C strings made before the fork.

use std::cell::UnsafeCell;
use std::ffi::CString;

use crate::error::Error;

/// PATH when the environment gives none (Docker's and runc's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A program, its arguments and environment, ready for execve.
pub struct Command {
    program: String,
    candidates: Vec<CString>,
    _args: Vec<CString>,
    _env: Vec<CString>,
    /// `LISTEN_PID=` and room for the pid, which is known only in the process that execs
    /// (socket activation): written there, without allocating, just before the exec.
    listen_pid: Option<Box<UnsafeCell<[u8; LISTEN_PID_SLOT]>>>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

const LISTEN_PID: &[u8] = b"LISTEN_PID=";
/// The prefix, the digits of any pid_t, and the NUL.
const LISTEN_PID_SLOT: usize = 32;

impl Command {
    /// None when `args` is empty.
    pub fn new(args: &[String], env: &[String]) -> Option<Command> {
        let program = args.first()?.clone();
        let cstrings = |v: &[String]| -> Vec<CString> {
            v.iter()
                .map(|s| CString::new(s.as_str()).unwrap_or_default())
                .collect()
        };
        let candidates = cstrings(&candidates(&program, env));
        let c_args = cstrings(args);
        let c_env = cstrings(env);
        let mut argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        Some(Command {
            program,
            candidates,
            _args: c_args,
            _env: c_env,
            listen_pid: None,
            argv,
            envp,
        })
    }

    /// Adds `LISTEN_PID` to the environment, set to the pid of whichever process execs
    /// the command (the app itself, or a post-stop shim's child).
    pub fn with_listen_pid(mut self) -> Command {
        let mut slot = [0u8; LISTEN_PID_SLOT];
        slot[..LISTEN_PID.len()].copy_from_slice(LISTEN_PID);
        let slot = Box::new(UnsafeCell::new(slot));
        self.envp.pop();
        self.envp
            .push(slot.get().cast::<libc::c_char>().cast_const());
        self.envp.push(std::ptr::null());
        self.listen_pid = Some(slot);
        self
    }

    /// The program as the user named it, for messages.
    pub fn shown(&self) -> String {
        if self.program.contains('/') {
            self.program.clone()
        } else {
            format!("{} (searched in PATH)", self.program)
        }
    }

    /// Replaces this process; returns only if it could not, with the errno of the exec.
    pub fn exec(&self) -> Error {
        if let Some(slot) = &self.listen_pid {
            // SAFETY: getpid has no preconditions. Nothing else reads the slot meanwhile:
            // this process is single-threaded and about to exec.
            unsafe { write_pid(&mut *slot.get(), libc::getpid()) };
        }
        // As execvp: a candidate that exists but cannot run (EACCES, ENOEXEC...) is a
        // better explanation than "not found" from the others.
        let mut errno = libc::ENOENT;
        for c_path in &self.candidates {
            // SAFETY: NUL-terminated arrays of valid C strings, alive in self.
            unsafe { libc::execve(c_path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
            let e = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if errno == libc::ENOENT {
                errno = e;
            }
        }
        Error::exec(format!("exec {}", self.shown()), errno)
    }

    /// Runs it as a child and waits: its raw wait status.
    pub fn run(&self) -> Result<i32, Error> {
        // SAFETY: single-threaded; the child execs or _exits.
        match unsafe { libc::fork() } {
            -1 => Err(Error::last_os("fork")),
            0 => {
                let e = self.exec();
                eprintln!("vessel: {e}");
                // SAFETY: leave the child without the parent's destructors.
                unsafe { libc::_exit(e.start_failure_code()) }
            }
            pid => {
                let mut raw = 0;
                loop {
                    // SAFETY: waitpid on our child with a valid out pointer.
                    if unsafe { libc::waitpid(pid, &mut raw, 0) } == pid {
                        return Ok(raw);
                    }
                    let e = Error::last_os("waiting for it");
                    if e.errno() != Some(libc::EINTR) {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Writes `pid` in decimal after the `LISTEN_PID=` prefix, NUL-terminated.
fn write_pid(slot: &mut [u8; LISTEN_PID_SLOT], pid: libc::pid_t) {
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let start = LISTEN_PID.len();
    for i in 0..len {
        slot[start + i] = digits[len - 1 - i];
    }
    slot[start + len] = 0;
}

/// Where to look for the program: itself if it has a slash, else each PATH entry.
pub(crate) fn candidates(program: &str, env: &[String]) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_pid_slot_takes_any_pid() {
        let mut slot = [0xffu8; LISTEN_PID_SLOT];
        slot[..LISTEN_PID.len()].copy_from_slice(LISTEN_PID);
        for (pid, text) in [(1, "1"), (40, "40"), (4194304, "4194304")] {
            write_pid(&mut slot, pid);
            let s = std::ffi::CStr::from_bytes_until_nul(&slot).unwrap();
            assert_eq!(s.to_str().unwrap(), format!("LISTEN_PID={text}"));
        }
    }

    #[test]
    fn path_search() {
        assert_eq!(candidates("/bin/sh", &[]), vec!["/bin/sh"]);
        assert_eq!(
            candidates("sh", &["PATH=/usr/bin:/bin/".into()]),
            vec!["/usr/bin/sh", "/bin/sh"]
        );
        assert_eq!(candidates("sh", &[]).len(), DEFAULT_PATH.split(':').count());
    }

    #[test]
    fn a_failed_exec_says_not_found_or_not_executable() {
        let missing = Command::new(&["/nonexistent/x".into()], &[]).unwrap();
        let e = missing.exec();
        assert_eq!((e.start_failure_code(), e.is_exec()), (127, true));
        // A directory exists but cannot be executed: that explains better than ENOENT.
        let dir = Command::new(&["x".into()], &["PATH=/nonexistent:/".into()]).unwrap();
        let e = Command::new(&["/".into()], &[]).unwrap().exec();
        assert_eq!(e.start_failure_code(), 126, "{e}");
        assert_eq!(dir.exec().start_failure_code(), 127);
    }
}
