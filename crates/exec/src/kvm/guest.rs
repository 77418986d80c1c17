//! The guest's PID 1: Vessel's binary as `/init` of the initramfs. It loads the kernel
//! modules, leaves the initramfs for a tmpfs root (pivot_root refuses the initial
//! ramfs, and the pod's init pivots), mounts /proc, /sys, /dev and the host's 9p share,
//! asks the host for the pod over the serial port, and hands it to the pod's init (the
//! same code as on a host, `pid1::init::serve`, forked into a mount namespace of its own)
//! over the same channel a supervisor uses. It checks that init's reports as a
//! supervisor does (`supervisor::witness`), relays them and the apps' output to the host,
//! passes the host's signals on, and powers the machine off when the pod is done.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::crossing::channel::{self, FromPod};
use crate::error::{Context, Error, Result};
use crate::kvm::enter::{GuestSessions, PodProcesses};
use crate::kvm::frame::{self, Frame, Reader};
use crate::plan::Handover;
use crate::proto::Event;
use crate::supervisor::supervise::Stream;
use crate::supervisor::witness::{Verdict, Witness};

/// The 9p mount tag of the host's share, and where the guest mounts it.
pub const SHARE_TAG: &str = "vessel";
pub const SHARE_DIR: &str = "/share";
/// The pod's stage1 root inside the guest.
pub const STAGE1_DIR: &str = "/stage1";
/// Where the relay's poll numbers the entered commands' outputs.
const SESSIONS: usize = 1 << 20;
/// The virtio-serial port's name.
pub const PORT_NAME: &str = "vessel";

/// Whether this process is a kvm guest's init: PID 1, started as `/init`.
pub fn is_guest_init(argv0: Option<&str>) -> bool {
    argv0 == Some("/init") && rustix::process::getpid().as_raw_nonzero().get() == 1
}

pub fn main() -> ! {
    let mut port: Option<OwnedFd> = None;
    if let Err(e) = run(&mut port) {
        eprintln!("vessel guest init: {e}");
        if let Some(p) = &port {
            let _ = frame::send(
                p.as_fd(),
                &Frame::Event(Event::Error {
                    message: format!("in the virtual machine: {e}"),
                }),
            );
        }
    }
    power_off()
}

fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    // Only if the kernel refused: PID 1's exit panics it, and QEMU (-no-reboot) ends.
    std::process::exit(1)
}

fn mount(source: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) -> Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (s, t, f, d) = (c(source), c(target), c(fstype), c(data));
    // SAFETY: valid C strings for mount(2).
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) };
    if r != 0 {
        return Err(Error::last_os(format!("mounting {fstype} at {target}")));
    }
    Ok(())
}

/// finit_module of every module `/modules/order` names, in that order.
fn load_modules() -> Result<()> {
    let order = std::fs::read_to_string(crate::kvm::initramfs::MODULES_ORDER)
        .ctx(crate::kvm::initramfs::MODULES_ORDER)?;
    for name in order.lines().filter(|l| !l.is_empty()) {
        let path = format!("{}/{name}.ko", crate::kvm::initramfs::MODULES_DIR);
        let f = std::fs::File::open(&path).ctx(&path)?;
        // SAFETY: finit_module with an open descriptor and an empty parameter string.
        let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            return Err(Error::last_os(format!("loading module {name}")));
        }
    }
    Ok(())
}

/// A tmpfs becomes the root (the initramfs stays underneath, out of reach).
fn switch_root() -> Result<()> {
    std::fs::create_dir_all("/root").ctx("/root")?;
    mount("tmpfs", "/root", "tmpfs", 0, "mode=755")?;
    for d in [
        "proc",
        "sys",
        "dev",
        &SHARE_DIR[1..],
        &STAGE1_DIR[1..],
        "tmp",
    ] {
        std::fs::create_dir_all(format!("/root/{d}")).ctx(d)?;
    }
    // The binary stays reachable by its path (`mount::read_only_self`, which `vessel
    // enter`'s crossing takes): bound over an empty file of the new root.
    std::fs::write("/root/init", b"").ctx("/root/init")?;
    mount("/init", "/root/init", "", libc::MS_BIND, "")?;
    rustix::process::chdir("/root").ctx("chdir /root")?;
    mount(".", "/", "", libc::MS_MOVE, "")?;
    rustix::process::chroot(".").ctx("chroot")?;
    rustix::process::chdir("/").ctx("chdir /")?;
    Ok(())
}

/// The virtio-serial port named [`PORT_NAME`], once the driver has made it.
fn open_port() -> Result<OwnedFd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") {
            for e in entries.flatten() {
                let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
                if name.trim() == PORT_NAME {
                    let dev = format!("/dev/{}", e.file_name().to_string_lossy());
                    if let Ok(f) = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&dev)
                    {
                        return Ok(OwnedFd::from(f));
                    }
                }
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::msg(
                "the serial port to the host",
                "no virtio port named vessel",
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn run(port_out: &mut Option<OwnedFd>) -> Result<()> {
    load_modules()?;
    switch_root()?;
    mount("proc", "/proc", "proc", 0, "")?;
    mount("sysfs", "/sys", "sysfs", 0, "")?;
    mount("devtmpfs", "/dev", "devtmpfs", 0, "")?;
    let port = open_port()?;
    *port_out = Some(port.try_clone().ctx("dup")?);
    mount(
        SHARE_TAG,
        SHARE_DIR,
        "9p",
        0,
        "trans=virtio,version=9p2000.L,msize=262144,cache=mmap,access=client",
    )?;
    frame::send(port.as_fd(), &Frame::Ready).ctx("writing to the host")?;
    let mut reader = Reader::default();
    let handover = loop {
        match next_frame(&port, &mut reader)? {
            Frame::Handover(bytes) => {
                break serde_json::from_slice::<Handover>(&bytes)
                    .map_err(|e| Error::msg("the pod from the host", e.to_string()))?
            }
            Frame::Signal(_) => return Ok(()),
            _ => {}
        }
    };
    if let Some(k) = &handover.kvm {
        crate::kvm::nic::configure(&k.nics)?;
    }
    relay(handover, port, reader)
}

/// Blocks for the host's next frame.
fn next_frame(port: &OwnedFd, reader: &mut Reader) -> Result<Frame> {
    let mut buf = [0u8; 65536];
    loop {
        if let Some(f) = reader
            .next_frame()
            .map_err(|e| Error::msg("reading from the host", e))?
        {
            return Ok(f);
        }
        let n = rustix::io::read(port, &mut buf).ctx("reading from the host")?;
        if n == 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        reader.push(&buf[..n]);
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx("pipe")
}

/// Starts the pod's init and relays until it is done.
fn relay(mut handover: Handover, port: OwnedFd, mut reader: Reader) -> Result<()> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().ctx("blocking SIGCHLD")?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .ctx("signalfd")?;
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx("/dev/null")?;
    let mut held: Vec<OwnedFd> = Vec::new();
    let mut outputs: Vec<(usize, Stream, Option<OwnedFd>)> = Vec::new();
    for (i, app) in handover.apps.iter_mut().enumerate() {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = rustix::io::fcntl_dupfd_cloexec(&null, 3).ctx("dup")?;
        app.stdio = Some([stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()]);
        held.extend([stdin, out_w, err_w]);
        outputs.push((i, Stream::Stdout, Some(out_r)));
        outputs.push((i, Stream::Stderr, Some(err_r)));
    }
    let apps = handover.apps.len();
    let (mut sup, pod) = channel::pair()?;
    // SAFETY: single-threaded; the child runs the pod's init and never returns.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(Error::last_os("fork"));
    }
    if child == 0 {
        drop(sup);
        // SAFETY: single-threaded child.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            std::process::exit(125);
        }
        crate::pid1::init::serve(pod, crate::trace::now());
    }
    drop(pod);
    sup.expect_sender(child);
    let memfd = rustix::fs::memfd_create("vessel-pod-plan", rustix::fs::MemfdFlags::CLOEXEC)
        .ctx("memfd")?;
    rustix::io::write(
        &memfd,
        &serde_json::to_vec(&handover).expect("serialisable"),
    )
    .ctx("writing the hand-over")?;
    rustix::fs::seek(&memfd, rustix::fs::SeekFrom::Start(0)).ctx("seek")?;
    let named: Vec<BorrowedFd<'_>> = held.iter().map(|f| f.as_fd()).collect();
    sup.send_handover(memfd.as_fd(), &named)
        .ctx("handing the pod to its init")?;
    drop(named);
    drop(held);
    let mut witness = Witness::new(child, apps);
    // `vessel enter`: the apps' processes as the init reported them, the sessions.
    let mut app_pids: Vec<Option<i32>> = vec![None; apps];
    let mut sessions = GuestSessions::default();
    let mut child_status: Option<i32> = None;
    let mut done = false;
    let mut channel_open = true;
    let mut buf = vec![0u8; 64 * 1024];
    let send = |f: &Frame| frame::send(port.as_fd(), f).ctx("writing to the host");
    let note = |pids: &mut Vec<Option<i32>>, e: &Event| match e {
        Event::Started { app, pid } => pids[*app] = Some(*pid),
        Event::Exited { app, .. } | Event::Failed { app, .. } => pids[*app] = None,
        _ => {}
    };
    loop {
        if child_status.is_some() && outputs.iter().all(|o| o.2.is_none()) {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        let mut which: Vec<usize> = Vec::new();
        // 0: channel, 1: port, 2: signals, 3+k: output k.
        if channel_open {
            fds.push(PollFd::new(sup.as_fd(), PollFlags::POLLIN));
            which.push(0);
        }
        fds.push(PollFd::new(port.as_fd(), PollFlags::POLLIN));
        which.push(1);
        fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        which.push(2);
        for (k, o) in outputs.iter().enumerate() {
            if let Some(fd) = &o.2 {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(3 + k);
            }
        }
        // SESSIONS + k: an entered command's output.
        let session_fds = sessions.fds();
        let session_keys: Vec<(u32, usize)> =
            session_fds.iter().map(|(id, k, _)| (*id, *k)).collect();
        for (k, (_, _, fd)) in session_fds.iter().enumerate() {
            fds.push(PollFd::new(*fd, PollFlags::POLLIN));
            which.push(SESSIONS + k);
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("poll", e as i32)),
        }
        let ready: Vec<usize> = fds
            .iter()
            .zip(&which)
            .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, w)| *w)
            .collect();
        drop(fds);
        drop(session_fds);
        for w in ready {
            match w {
                0 => loop {
                    match sup.recv() {
                        Ok(Some(FromPod::Event(e, pidfd))) => match witness.check(e, pidfd) {
                            Verdict::Believe(Event::Done) => done = true,
                            Verdict::Believe(e) => {
                                note(&mut app_pids, &e);
                                send(&Frame::Event(e))?
                            }
                            Verdict::Refuse(why) => send(&Frame::Event(Event::Warning {
                                message: format!("ignored a report of the pod's init: {why}"),
                            }))?,
                        },
                        Ok(Some(FromPod::Failure(e))) => send(&Frame::Event(Event::Error {
                            message: e.to_string(),
                        }))?,
                        Ok(Some(FromPod::Closed)) | Err(_) => {
                            channel_open = false;
                            break;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                    }
                },
                1 => {
                    let n = rustix::io::read(&port, &mut buf).unwrap_or(0);
                    reader.push(&buf[..n]);
                    while let Ok(Some(f)) = reader.next_frame() {
                        match f {
                            // SAFETY: a signal to our own child.
                            Frame::Signal(s) => unsafe {
                                libc::kill(child, s);
                            },
                            Frame::Enter { id, request } => {
                                let pod = PodProcesses {
                                    handover: &handover,
                                    init_pid: child,
                                    app_pids: &app_pids,
                                };
                                sessions.start(id, &request, &pod, port.as_fd());
                            }
                            Frame::Input { id, data } => sessions.input(id, &data),
                            _ => {}
                        }
                    }
                    if n == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                2 => {
                    while let Ok(Some(_)) = sigfd.read_signal() {}
                    loop {
                        let mut raw = 0;
                        // SAFETY: waitpid with a valid out pointer; we reap every orphan.
                        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
                        if pid <= 0 {
                            break;
                        }
                        if pid == child {
                            child_status = Some(raw);
                        } else {
                            sessions.reaped(pid, raw, port.as_fd());
                        }
                    }
                }
                k if k >= SESSIONS => {
                    let (id, stream) = session_keys[k - SESSIONS];
                    sessions
                        .output(id, stream, port.as_fd())
                        .ctx("writing to the host")?;
                }
                k => {
                    let o = &mut outputs[k - 3];
                    let fd = o.2.as_ref().expect("polled");
                    match rustix::io::read(fd, &mut buf) {
                        Ok(0) | Err(_) => o.2 = None,
                        Ok(n) => send(&Frame::Output {
                            app: o.0 as u16,
                            stream: o.1,
                            data: buf[..n].to_vec(),
                        })?,
                    }
                }
            }
        }
    }
    // What the init still said before it went.
    while let Ok(Some(FromPod::Event(e, pidfd))) = sup.recv() {
        match witness.check(e, pidfd) {
            Verdict::Believe(Event::Done) => done = true,
            Verdict::Believe(e) => send(&Frame::Event(e))?,
            Verdict::Refuse(_) => {}
        }
    }
    if !done {
        let st = crate::proto::ExitStatus::from_wait(child_status.unwrap_or(0));
        send(&Frame::Event(Event::Error {
            message: format!(
                "the pod's init in the virtual machine ended before its apps did (exit {})",
                st.code
            ),
        }))?;
    }
    // Everything the apps wrote reaches the host's disk before the host hears "done" (it
    // then stops the machine at once).
    // SAFETY: sync takes nothing.
    unsafe { libc::sync() };
    send(&Frame::Event(Event::Done))?;
    Ok(())
}
