//! A kvm pod's init on the host: the sealed binary in the pod's own pid, mount, network,
//! uts and ipc namespaces (its pid is the pod's pid, as for every flavour). It composes
//! each app's root as the default flavour does (the same overlay, in its own mount
//! namespace, so nothing is in the host's table and everything goes with it), binds the
//! volumes beside them, shares that tree with the guest over 9p (nothing copied), starts
//! QEMU as its child and relays: the guest's reports to the supervisor on the channel,
//! the apps' output into the pipes the supervisor reads, the signals it gets (`stop`)
//! to the guest. QEMU dies with it (it is in its pid namespace).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::fs::{Mode, OFlags};

use crate::crossing::channel::PodEnd;
use crate::error::{Context, Error, Result};
use crate::kvm::enter::HostSessions;
use crate::kvm::frame::{self, Frame, Reader};
use crate::kvm::guest::{PORT_NAME, SHARE_DIR, SHARE_TAG, STAGE1_DIR};
use crate::mount::{self, Target};
use crate::plan::{Handover, KvmPlan, RootfsPlan};
use crate::proto::Event;
use crate::supervisor::supervise::Stream;

/// The guest's kernel command line: quiet, no probing of what is not there, and no
/// reboot loop (panic=-1 with QEMU's -no-reboot ends QEMU).
pub const KERNEL_CMDLINE: &str = "console=ttyS0 quiet panic=-1 8250.nr_uarts=1 \
     i8042.noaux i8042.nomux i8042.nopnp i8042.nokbd";

pub fn main(handover: Handover, channel: PodEnd) -> ! {
    crate::pid1::init::exit_reporting(&channel, run(&handover, &channel))
}

fn run(h: &Handover, channel: &PodEnd) -> Result<()> {
    let kvm = h.kvm.as_ref().expect("a kvm hand-over");
    crate::cgroups::join_with_fds(&h.init_cgroup_fds).ctx("joining the pod's cgroup")?;
    for fd in h.cgroup_descriptors().chain(
        h.apps
            .iter()
            .filter_map(|a| a.stdio.as_ref().map(|s| &s[0])),
    ) {
        // SAFETY: descriptors handed to us that we no longer need.
        unsafe { libc::close(*fd) };
    }
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in crate::pid1::init::FORWARDED {
        mask.add(*s);
    }
    mask.thread_block().ctx("blocking signals")?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .ctx("signalfd")?;
    let mut guest = share(h)?;
    let taps = if h.plan.network_gate {
        network(h, &mut guest, channel)?
    } else {
        Vec::new()
    };
    let nics = guest
        .kvm
        .as_ref()
        .map(|k| k.nics.clone())
        .unwrap_or_default();
    let (ours, theirs) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ctx("socketpair")?;
    let qemu = spawn_qemu(kvm, &h.plan.stage1_dir, theirs.as_fd(), &nics, &taps)?;
    drop(theirs);
    drop(taps);
    let outputs: Vec<[Option<RawFd>; 2]> = h
        .apps
        .iter()
        .map(|a| match a.stdio {
            Some([_, o, e]) => [Some(o), Some(e)],
            None => [None, None],
        })
        .collect();
    let listener = crate::kvm::enter::listen(&kvm.enter_socket)
        .with_ctx(|| format!("listening at {}", kvm.enter_socket.display()))?;
    let result = relay(
        kvm, &guest, &ours, &sigfd, qemu, channel, &outputs, &listener,
    );
    let _ = std::fs::remove_file(&kvm.enter_socket);
    for fd in outputs.iter().flatten().flatten() {
        // SAFETY: our copies of the apps' output pipes; the supervisor sees them close.
        unsafe { libc::close(*fd) };
    }
    if result.is_ok() {
        channel.report(&Event::Done, None);
    }
    // The guest synced its writes before it said "done": nothing is left to wait for.
    end_qemu(qemu, Duration::ZERO);
    result
}

/// Mounts the tree the guest sees: a tmpfs at the pod's stage1 directory holding each
/// app's overlay root (`apps/<app>/rootfs`) and the volumes its spec binds
/// (`vols/<app index>.<mount index>`). Returns the guest's hand-over: the same plan with
/// those roots and sources as the guest sees them.
fn share(h: &Handover) -> Result<Handover> {
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .ctx("making / private")?;
    let stage1_path = h.plan.stage1_dir.to_string_lossy().into_owned();
    let target = mount::open_host(&stage1_path)?;
    mount::mount_new(
        "tmpfs",
        Some("vessel-kvm-share"),
        &mount::parse_options(&["mode=755".into(), "size=1m".into()]),
        target.as_fd(),
    )?;
    let stage1 = rustix::fs::open(
        &h.plan.stage1_dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(&stage1_path)?;
    let mut guest = Handover {
        plan: h.plan.clone(),
        apps: h
            .apps
            .iter()
            .map(|a| crate::plan::AppHandover {
                seccomp_bpf: a.seccomp_bpf.clone(),
                ..Default::default()
            })
            .collect(),
        kvm: h.kvm.clone().map(|k| KvmPlan {
            in_guest: true,
            ..k
        }),
        ..Default::default()
    };
    guest.plan.stage1_dir = STAGE1_DIR.into();
    guest.plan.network_gate = false;
    for (i, app) in guest.plan.apps.iter_mut().enumerate() {
        let rel = crate::pid1::stage1::app_root(&app.name);
        let t = mount::open_target(stage1.as_fd(), &rel, Target::Dir)?;
        let overlay = crate::pid1::rootfs::overlay(&app.rootfs, h.plan.rootless)
            .with_ctx(|| format!("app {}", app.name))?;
        mount::attach(&overlay, t.as_fd())
            .with_ctx(|| format!("app {}: attaching its root", app.name))?;
        app.rootfs = RootfsPlan {
            lower: Vec::new(),
            upper: Default::default(),
            work: Default::default(),
            bind: Some(format!("{SHARE_DIR}/{rel}").into()),
        };
        let Some(mounts) = app.spec.mounts_mut() else {
            continue;
        };
        for (k, m) in mounts.iter_mut().enumerate() {
            let options = mount::parse_options(m.options().as_deref().unwrap_or_default());
            let bind = options.bind || m.typ().as_deref() == Some("bind");
            let Some(source) = m.source().clone().filter(|s| bind && s.is_absolute()) else {
                continue;
            };
            let what = || format!("app {}: volume {}", app.name, source.display());
            let src = rustix::fs::openat2(
                rustix::fs::CWD,
                &source,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                rustix::fs::ResolveFlags::NO_SYMLINKS,
            )
            .with_ctx(what)?;
            let dir =
                rustix::fs::fstat(&src).with_ctx(what)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
            let rel = format!("vols/{i}.{k}");
            let t = mount::open_target(
                stage1.as_fd(),
                &rel,
                if dir { Target::Dir } else { Target::File },
            )?;
            mount::bind(
                src.as_fd(),
                t.as_fd(),
                true,
                rustix::mount::MountAttrFlags::empty(),
            )
            .with_ctx(what)?;
            m.set_source(Some(format!("{SHARE_DIR}/{rel}").into()));
        }
    }
    Ok(guest)
}

/// Waits for the pod's networks (the supervisor's CNI ADD), as the default flavour's init
/// does before its apps start, and gives the guest what they made: the interfaces, taps
/// joined to them (returned: QEMU's), /etc/hosts, resolv.conf and the networks' variables.
fn network(h: &Handover, guest: &mut Handover, channel: &PodEnd) -> Result<Vec<OwnedFd>> {
    let ready = channel
        .receive_network()
        .ctx("waiting for the pod's networks")?;
    guest.plan.hosts = Some(ready.hosts.clone());
    match (&h.plan.resolv_conf, &ready.resolv_conf) {
        (Some(_), Some(r)) => guest.plan.resolv_conf = Some(r.clone()),
        (None, Some(_)) => channel.report(
            &Event::Warning {
                message: "the pod's networks returned DNS settings, but its apps keep their own resolv.conf".into(),
            },
            None,
        ),
        _ => {}
    }
    crate::pid1::init::add_env(&mut guest.plan, &ready.env);
    let wired = crate::kvm::nic::wire()?;
    let (nics, taps): (Vec<_>, Vec<_>) = wired.into_iter().unzip();
    if let Some(k) = guest.kvm.as_mut() {
        k.nics = nics;
    }
    Ok(taps)
}

fn spawn_qemu(
    kvm: &KvmPlan,
    share: &std::path::Path,
    port: BorrowedFd<'_>,
    nics: &[crate::kvm::nic::GuestNic],
    taps: &[OwnedFd],
) -> Result<i32> {
    let log = rustix::fs::open(
        &kvm.qemu_log,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .ctx(kvm.qemu_log.to_string_lossy())?;
    let null = rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .ctx("/dev/null")?;
    let args = qemu_args(kvm, share, nics);
    let tap_fds: Vec<RawFd> = taps.iter().map(|t| t.as_raw_fd()).collect();
    let c = |s: &str| {
        std::ffi::CString::new(s).map_err(|_| Error::msg("qemu's arguments", s.to_string()))
    };
    let cargs: Vec<std::ffi::CString> = std::iter::once(kvm.qemu.to_string_lossy().into_owned())
        .chain(args)
        .map(|a| c(&a))
        .collect::<Result<_>>()?;
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: single-threaded; the child only calls async-signal-safe functions, then exec.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("starting QEMU (fork)"));
    }
    if pid == 0 {
        // SAFETY: the child: descriptors onto 0, 1, 2 and 3, then exec.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(log.as_raw_fd(), 1);
            libc::dup2(log.as_raw_fd(), 2);
            libc::dup2(port.as_raw_fd(), 3);
            // The taps at 4, 5, ...: first out of the way of those numbers, then in place.
            let high: Vec<RawFd> = tap_fds
                .iter()
                .map(|fd| libc::fcntl(*fd, libc::F_DUPFD, 64))
                .collect();
            for (k, fd) in high.iter().enumerate() {
                libc::dup2(*fd, TAP_FD + k as RawFd);
            }
            let first_free = TAP_FD as u32 + tap_fds.len() as u32;
            libc::syscall(libc::SYS_close_range, first_free, u32::MAX, 0u32);
            libc::execv(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
    }
    Ok(pid)
}

/// Where QEMU finds the first tap (the others follow).
const TAP_FD: RawFd = 4;

/// QEMU's command line: a q35 machine with nothing but what the pod needs (serial
/// console to a file, one virtio-serial port on fd 3, the 9p share, a virtio-net device
/// per interface of the pod on its tap, fd 4 on, with the interface's MAC).
pub fn qemu_args(
    kvm: &KvmPlan,
    share: &std::path::Path,
    nics: &[crate::kvm::nic::GuestNic],
) -> Vec<String> {
    let s = |x: &str| x.to_string();
    let mut args = vec![
        s("-machine"),
        s("q35"),
        s("-accel"),
        kvm.accel.clone(),
        s("-m"),
        kvm.memory_mib.to_string(),
        s("-smp"),
        kvm.cpus.to_string(),
        s("-nodefaults"),
        s("-no-user-config"),
        s("-nographic"),
        s("-no-reboot"),
        s("-kernel"),
        kvm.kernel.to_string_lossy().into_owned(),
        s("-initrd"),
        kvm.initramfs.to_string_lossy().into_owned(),
        s("-append"),
        s(KERNEL_CMDLINE),
        s("-chardev"),
        format!("file,id=con,path={}", kvm.console_log.display()),
        s("-serial"),
        s("chardev:con"),
        s("-device"),
        s("virtio-serial-pci,id=vs"),
        s("-chardev"),
        s("socket,id=port,fd=3"),
        s("-device"),
        format!("virtserialport,bus=vs.0,chardev=port,name={PORT_NAME}"),
        s("-fsdev"),
        format!(
            "local,id=share,path={},security_model=passthrough,multidevs=remap",
            share.display()
        ),
        s("-device"),
        format!("virtio-9p-pci,fsdev=share,mount_tag={SHARE_TAG}"),
    ];
    for (k, nic) in nics.iter().enumerate() {
        args.extend([
            s("-netdev"),
            format!("tap,id=net{k},fd={},vhost=off", TAP_FD + k as RawFd),
            s("-device"),
            format!("virtio-net-pci,netdev=net{k},mac={}", nic.mac_text()),
        ]);
    }
    args
}

#[allow(clippy::too_many_arguments)]
fn relay(
    kvm: &KvmPlan,
    guest: &Handover,
    sock: &OwnedFd,
    sigfd: &SignalFd,
    qemu: i32,
    channel: &PodEnd,
    outputs: &[[Option<RawFd>; 2]],
    listener: &OwnedFd,
) -> Result<()> {
    let mut sessions = HostSessions::default();
    let deadline = Instant::now() + Duration::from_millis(kvm.boot_timeout_ms);
    let mut booted = false;
    let mut reader = Reader::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let timeout = if booted {
            PollTimeout::NONE
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO)
        };
        // `vessel enter` once the guest has booted: the listener, then each session.
        let session_fds = sessions.fds();
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if booted {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.extend(
                session_fds
                    .iter()
                    .map(|(_, fd)| PollFd::new(*fd, PollFlags::POLLIN)),
            );
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::os("poll", e as i32)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()))
        };
        let (sock_ready, sig_ready, accept_ready) = (ready(0), ready(1), ready(2));
        let clients: Vec<u32> = session_fds
            .iter()
            .enumerate()
            .filter(|(k, _)| ready(3 + k))
            .map(|(_, (id, _))| *id)
            .collect();
        drop(fds);
        drop(session_fds);
        if accept_ready {
            sessions.accept(listener);
        }
        for id in clients {
            sessions
                .from_client(id, sock.as_fd())
                .ctx("passing `vessel enter` to the guest")?;
        }
        if !booted && Instant::now() >= deadline && !sock_ready {
            return Err(Error::msg(
                format!(
                    "starting the virtual machine (kernel {}, accelerator {})",
                    kvm.kernel.display(),
                    kvm.accel
                ),
                format!(
                    "it did not boot within {} s{}",
                    kvm.boot_timeout_ms / 1000,
                    last_words(kvm)
                ),
            ));
        }
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    continue;
                }
                if !booted {
                    return Err(Error::msg(
                        "starting the virtual machine",
                        format!("stopped (signal {sig}) before the guest booted"),
                    ));
                }
                frame::send(sock.as_fd(), &Frame::Signal(sig)).ctx("signalling the guest")?;
            }
            if let Some(status) = reaped(qemu) {
                // What the guest said before it went still counts.
                drain(sock, &mut reader, channel, outputs, &mut buf)?;
                return Err(Error::msg(
                    "the virtual machine",
                    format!(
                        "QEMU ended before the pod did ({}){}",
                        describe(status),
                        last_words(kvm)
                    ),
                ));
            }
        }
        if sock_ready {
            let n = rustix::io::read(sock, &mut buf).unwrap_or(0);
            if n == 0 {
                let status = wait_qemu(qemu);
                return Err(Error::msg(
                    "the virtual machine",
                    format!(
                        "QEMU ended before the pod did ({}){}",
                        describe(status),
                        last_words(kvm)
                    ),
                ));
            }
            reader.push(&buf[..n]);
            loop {
                let f = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Err(Error::msg("reading from the guest", e)),
                };
                match f {
                    Frame::Ready if !booted => {
                        booted = true;
                        let bytes = serde_json::to_vec(guest).expect("serialisable");
                        frame::send(sock.as_fd(), &Frame::Handover(bytes))
                            .ctx("handing the pod to the guest")?;
                    }
                    Frame::Event(Event::Done) => return Ok(()),
                    f @ (Frame::EnterOutput { .. } | Frame::EnterExit { .. }) => {
                        sessions.to_client(&f)
                    }
                    other => pass_on(other, channel, outputs),
                }
            }
        }
    }
}

/// One frame from the guest, passed to the supervisor.
fn pass_on(f: Frame, channel: &PodEnd, outputs: &[[Option<RawFd>; 2]]) {
    match f {
        Frame::Event(e) => channel.report(&e, None),
        Frame::Output { app, stream, data } => {
            let k = if stream == Stream::Stderr { 1 } else { 0 };
            if let Some(Some(fd)) = outputs.get(app as usize).map(|o| o[k]) {
                // SAFETY: the pipe's write end, ours until we close it at the end.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                let mut done = 0;
                while done < data.len() {
                    match rustix::io::write(fd, &data[done..]) {
                        Ok(n) => done += n,
                        Err(rustix::io::Errno::INTR) => {}
                        Err(_) => break,
                    }
                }
            }
        }
        _ => {}
    }
}

/// Whatever whole frames are left on the socket.
fn drain(
    sock: &OwnedFd,
    reader: &mut Reader,
    channel: &PodEnd,
    outputs: &[[Option<RawFd>; 2]],
    buf: &mut [u8],
) -> Result<()> {
    while let Ok(n) =
        rustix::net::recv(sock, &mut *buf, rustix::net::RecvFlags::DONTWAIT).map(|(n, _)| n)
    {
        if n == 0 {
            break;
        }
        reader.push(&buf[..n]);
    }
    while let Ok(Some(f)) = reader.next_frame() {
        if f != Frame::Event(Event::Done) {
            pass_on(f, channel, outputs);
        }
    }
    Ok(())
}

fn reaped(pid: i32) -> Option<i32> {
    let mut raw = 0;
    // SAFETY: waitpid on our child with a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
    (r == pid).then_some(raw)
}

fn wait_qemu(pid: i32) -> i32 {
    let mut raw = 0;
    // SAFETY: waitpid on our child with a valid out pointer.
    while unsafe { libc::waitpid(pid, &mut raw, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    raw
}

/// Waits up to `grace` for QEMU to end by itself, then kills it.
fn end_qemu(pid: i32, grace: Duration) {
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if reaped(pid).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: our own child, not reaped yet.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_qemu(pid);
}

fn describe(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// The last lines QEMU and the guest's console wrote, for an error.
fn last_words(kvm: &KvmPlan) -> String {
    let mut out = String::new();
    for (what, path) in [("QEMU", &kvm.qemu_log), ("console", &kvm.console_log)] {
        let text = std::fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        let tail = lines[lines.len().saturating_sub(2)..].join(" | ");
        out.push_str(&format!("; {what}: {}", schema_escape(&tail)));
    }
    if out.is_empty() {
        out = format!("; see {}", kvm.console_log.display());
    }
    out
}

/// Keeps control characters of a console out of an error message.
fn schema_escape(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(400)
        .collect()
}
