//! `vessel enter` of a kvm pod: a command run in an app of the virtual machine.
//!
//! ```text
//! vessel enter ──unix socket──▶ pod's init on the host ──port──▶ guest's PID 1
//!   X {app, command}              numbers the session (id)        forks a session process
//!   I stdin … I (empty: end)      passes frames on by id          whose stdio are pipes; it
//!   ◀ P output … ◀ Z exit code                                    enters the app through
//!                                                                 `crossing::enter`, the
//!                                                                 host's own path (joins the
//!                                                                 app's namespaces, becomes
//!                                                                 the app via `crate::app`)
//! ```
//!
//! The command has no terminal: its stdin, stdout and stderr are pipes relayed as frames.
//! Its exit code (or 125 when it could not be entered) is `vessel enter`'s.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::kvm::frame::{self, Frame, Reader};
use crate::plan::Handover;
use crate::supervisor::supervise::Stream;

/// What `vessel enter` asks the guest to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnterRequest {
    /// The app's index in the plan.
    pub app: usize,
    pub command: Vec<String>,
}

/// A unix socket path that fits `sockaddr_un` however deep the pod's directory is:
/// through /proc/self/fd of the open directory.
fn short_path(dir: &OwnedFd, name: &str) -> String {
    format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())
}

fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// The pod's init on the host: listens at `socket` (mode 0600) for `vessel enter`.
pub fn listen(socket: &Path) -> std::io::Result<OwnedFd> {
    let dir = open_dir(socket.parent().unwrap_or(Path::new("/")))?;
    let name = socket.file_name().unwrap_or_default().to_string_lossy();
    let _ = std::fs::remove_file(socket);
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
        None,
    )?;
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let bound = rustix::net::bind(
        &fd,
        &rustix::net::SocketAddrUnix::new(short_path(&dir, &name))?,
    );
    rustix::process::umask(old);
    bound?;
    rustix::net::listen(&fd, 8)?;
    Ok(fd)
}

/// `vessel enter` of a kvm pod: runs `command` in app `app` and relays our stdin, stdout
/// and stderr; the command's exit code.
pub fn client(socket: &Path, app: usize, command: Vec<String>) -> std::io::Result<i32> {
    let dir = open_dir(socket.parent().unwrap_or(Path::new("/")))?;
    let name = socket.file_name().unwrap_or_default().to_string_lossy();
    let conn = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(
        &conn,
        &rustix::net::SocketAddrUnix::new(short_path(&dir, &name))?,
    )
    .map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("reaching the pod's init at {}: {e}", socket.display()),
        )
    })?;
    let request = serde_json::to_vec(&EnterRequest { app, command }).expect("serialisable");
    frame::send(conn.as_fd(), &Frame::Enter { id: 0, request })?;
    let stdin = std::io::stdin();
    let mut stdin_open = true;
    let mut reader = Reader::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![rustix::event::PollFd::new(
            &conn,
            rustix::event::PollFlags::IN,
        )];
        if stdin_open {
            fds.push(rustix::event::PollFd::new(
                &stdin,
                rustix::event::PollFlags::IN,
            ));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let (conn_ready, stdin_ready) = (
            !fds[0].revents().is_empty(),
            fds.get(1).is_some_and(|f| !f.revents().is_empty()),
        );
        drop(fds);
        if stdin_ready {
            let n = rustix::io::read(&stdin, &mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
            }
            frame::send(
                conn.as_fd(),
                &Frame::Input {
                    id: 0,
                    data: buf[..n].to_vec(),
                },
            )?;
        }
        if conn_ready {
            let n = rustix::io::read(&conn, &mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other(
                    "the pod's init went away before the command ended",
                ));
            }
            reader.push(&buf[..n]);
            while let Some(f) = reader.next_frame().map_err(std::io::Error::other)? {
                match f {
                    Frame::EnterOutput { stream, data, .. } => {
                        let _ = match stream {
                            Stream::Stdout => std::io::stdout().write_all(&data),
                            Stream::Stderr => std::io::stderr().write_all(&data),
                        };
                        let _ = std::io::stdout().flush();
                    }
                    Frame::EnterExit { code, .. } => return Ok(code),
                    _ => {}
                }
            }
        }
    }
}

/// The host side: each `vessel enter` connection, by session id.
#[derive(Default)]
pub struct HostSessions {
    next: u32,
    conns: HashMap<u32, (OwnedFd, Reader)>,
}

impl HostSessions {
    /// A new connection on the listener.
    pub fn accept(&mut self, listener: &OwnedFd) {
        while let Ok(c) = rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC) {
            self.next += 1;
            self.conns.insert(self.next, (c, Reader::default()));
        }
    }

    pub fn fds(&self) -> Vec<(u32, BorrowedFd<'_>)> {
        self.conns
            .iter()
            .map(|(id, (c, _))| (*id, c.as_fd()))
            .collect()
    }

    /// Reads what session `id` sent and passes it to the guest on `port`.
    pub fn from_client(&mut self, id: u32, port: BorrowedFd<'_>) -> std::io::Result<()> {
        let Some((conn, reader)) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        let mut buf = vec![0u8; 64 * 1024];
        let n = rustix::io::read(&*conn, &mut buf).unwrap_or(0);
        if n == 0 {
            // Gone: its command's stdin ends; what it writes goes nowhere.
            self.conns.remove(&id);
            return frame::send(
                port,
                &Frame::Input {
                    id,
                    data: Vec::new(),
                },
            );
        }
        reader.push(&buf[..n]);
        while let Ok(Some(f)) = reader.next_frame() {
            match f {
                Frame::Enter { request, .. } => frame::send(port, &Frame::Enter { id, request })?,
                Frame::Input { data, .. } => frame::send(port, &Frame::Input { id, data })?,
                _ => {}
            }
        }
        Ok(())
    }

    /// A frame of the guest for session `id`.
    pub fn to_client(&mut self, f: &Frame) {
        let (id, last) = match f {
            Frame::EnterOutput { id, .. } => (*id, false),
            Frame::EnterExit { id, .. } => (*id, true),
            _ => return,
        };
        if let Some((conn, _)) = self.conns.get(&id) {
            let _ = frame::send(conn.as_fd(), f);
        }
        if last {
            self.conns.remove(&id);
        }
    }
}

/// One command run in the guest: its process, the write end of its stdin, its output.
struct GuestSession {
    pid: i32,
    stdin: Option<OwnedFd>,
    outputs: [Option<OwnedFd>; 2],
    status: Option<i32>,
}

/// The guest side: the session processes of `vessel enter`.
#[derive(Default)]
pub struct GuestSessions {
    sessions: HashMap<u32, GuestSession>,
}

/// What the guest's PID 1 knows of the pod: its init and the apps' processes.
pub struct PodProcesses<'a> {
    pub handover: &'a Handover,
    pub init_pid: i32,
    pub app_pids: &'a [Option<i32>],
}

impl GuestSessions {
    /// Starts session `id`; a request that cannot run ends at once with 125 and why.
    pub fn start(&mut self, id: u32, request: &[u8], pod: &PodProcesses<'_>, port: BorrowedFd<'_>) {
        if let Err(why) = self.spawn(id, request, pod) {
            let _ = frame::send(
                port,
                &Frame::EnterOutput {
                    id,
                    stream: Stream::Stderr,
                    data: format!("vessel: enter: {why}\n").into_bytes(),
                },
            );
            let _ = frame::send(port, &Frame::EnterExit { id, code: 125 });
        }
    }

    fn spawn(&mut self, id: u32, request: &[u8], pod: &PodProcesses<'_>) -> Result<(), String> {
        let req: EnterRequest =
            serde_json::from_slice(request).map_err(|e| format!("a garbled request: {e}"))?;
        let plan = pod
            .handover
            .plan
            .apps
            .get(req.app)
            .ok_or_else(|| format!("no app {}", req.app))?;
        let app_pid = pod
            .app_pids
            .get(req.app)
            .copied()
            .flatten()
            .ok_or_else(|| format!("app {} is not running", plan.name))?;
        let seccomp = match pod
            .handover
            .apps
            .get(req.app)
            .and_then(|a| a.seccomp_bpf.as_ref())
        {
            Some(b) => Some(
                crate::seccomp::SeccompProgram::from_bytes(b)
                    .map_err(|e| format!("app {}'s filter: {e}", plan.name))?,
            ),
            None => None,
        };
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| format!("pipe: {e}"))
        };
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let init_start = crate::crossing::enter::start_time(pod.init_pid);
        // SAFETY: the guest's PID 1 is single-threaded; the child ends with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: our stdio become the pipes.
            unsafe {
                libc::dup2(in_r.as_raw_fd(), 0);
                libc::dup2(out_w.as_raw_fd(), 1);
                libc::dup2(err_w.as_raw_fd(), 2);
            }
            drop((in_r, in_w, out_r, out_w, err_r, err_w));
            let code = match crate::crossing::enter::enter(crate::crossing::enter::EnterRequest {
                app_pid,
                init_pid: pod.init_pid,
                init_start,
                spec: &plan.spec,
                seccomp,
                command: req.command,
            }) {
                Ok(status) => crate::proto::ExitStatus::from_wait(status).code,
                Err(e) => {
                    eprintln!("vessel: enter: app {}: {e}", plan.name);
                    125
                }
            };
            // SAFETY: leave without the guest init's destructors.
            unsafe { libc::_exit(code) };
        }
        drop((in_r, out_w, err_w));
        self.sessions.insert(
            id,
            GuestSession {
                pid,
                stdin: Some(in_w),
                outputs: [Some(out_r), Some(err_r)],
                status: None,
            },
        );
        Ok(())
    }

    /// The host's stdin for session `id`; no bytes: its end.
    pub fn input(&mut self, id: u32, data: &[u8]) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if data.is_empty() {
            s.stdin = None;
            return;
        }
        if let Some(fd) = &s.stdin {
            let mut done = 0;
            while done < data.len() {
                match rustix::io::write(fd, &data[done..]) {
                    Ok(n) => done += n,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => {
                        s.stdin = None;
                        break;
                    }
                }
            }
        }
    }

    /// The output descriptors to poll: (session, stream index, fd).
    pub fn fds(&self) -> Vec<(u32, usize, BorrowedFd<'_>)> {
        let mut out = Vec::new();
        for (id, s) in &self.sessions {
            for (k, o) in s.outputs.iter().enumerate() {
                if let Some(fd) = o {
                    out.push((*id, k, fd.as_fd()));
                }
            }
        }
        out
    }

    /// Output of session `id` ready on stream `k`: passed to the host.
    pub fn output(&mut self, id: u32, k: usize, port: BorrowedFd<'_>) -> std::io::Result<()> {
        let Some(s) = self.sessions.get_mut(&id) else {
            return Ok(());
        };
        let mut buf = vec![0u8; 64 * 1024];
        let Some(fd) = &s.outputs[k] else {
            return Ok(());
        };
        match rustix::io::read(fd, &mut buf) {
            Ok(0) | Err(_) => s.outputs[k] = None,
            Ok(n) => frame::send(
                port,
                &Frame::EnterOutput {
                    id,
                    stream: if k == 1 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    },
                    data: buf[..n].to_vec(),
                },
            )?,
        }
        self.finish(port)
    }

    /// A reaped process: true if it was a session's.
    pub fn reaped(&mut self, pid: i32, status: i32, port: BorrowedFd<'_>) -> bool {
        let Some(s) = self.sessions.values_mut().find(|s| s.pid == pid) else {
            return false;
        };
        s.status = Some(status);
        let _ = self.finish(port);
        true
    }

    /// Sessions whose process has ended and whose output is all read: their exit code.
    fn finish(&mut self, port: BorrowedFd<'_>) -> std::io::Result<()> {
        let ended: Vec<u32> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.status.is_some() && s.outputs.iter().all(Option::is_none))
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let s = self.sessions.remove(&id).expect("listed");
            let raw = s.status.expect("ended");
            let code = if libc::WIFEXITED(raw) {
                libc::WEXITSTATUS(raw)
            } else {
                128 + libc::WTERMSIG(raw)
            };
            frame::send(port, &Frame::EnterExit { id, code })?;
        }
        Ok(())
    }
}
