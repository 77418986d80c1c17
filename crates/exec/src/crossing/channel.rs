//! The socket between the supervisor and the pod: the one place that knows its messages,
//! each step one method on either end (youki's process/channel.rs). A SOCK_SEQPACKET pair,
//! so every message arrives whole; descriptors ride along with SCM_RIGHTS (one
//! implementation, [`send`] and [`recv`]), and the supervisor's end has SO_PASSCRED, so
//! each message it reads says which process sent it.
//!
//! ```text
//! supervisor: SupervisorEnd                        pod's first process, then init: PodEnd
//! [--private-users] user_namespace_ready  u ───▶  wait_user_namespace_ready
//!                                                  (becomes the namespace's root, execs the
//!                                                  sealed binary: it is now the pod's init)
//! send_handover            F(fds)… E ─────────▶  receive_handover: plan.json's plan, this
//!                                                  start's descriptors, filters and CPUs
//! [--private-users] send_layers  L(fd)… D ────▶  receive_layers: idmapped layers
//! [CNI networks] send_network  N(memfd) ─────▶  receive_network: /etc/hosts and
//!                                                  resolv.conf once the networks are up;
//!                                                  no app starts before
//!                  recv ◀─────── T(master)        send_terminal: an app's pty master
//!                  recv ◀─────── e <event>(pidfd) report: proto::Event lines; `started`
//!                                                  carries a pidfd of the app's process
//!                  recv ◀─────── x <error>        fail: the first process or the init gave
//!                                                  up before it could report
//! ```
//!
//! Why a socket and not a pipe for the reports: an app holding CAP_SYS_PTRACE may open
//! what pid 1 holds through /proc/1/fd, and a pipe opened that way takes writes, so the
//! app could report "exited 0, done" for its pod (a socket cannot be opened through /proc).
//! A descriptor taken with pidfd_getfd still works, but what it sends carries the sender's
//! pid, and the supervisor believes only messages from the init (see `supervise`, which
//! also checks exits against the apps' pidfds).

use std::io::{self, IoSlice, IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::crossing::network::NetworkReady;
use crate::error::{Context, Error, Result};
use crate::plan::Handover;
use crate::proto::Event;

/// Descriptors per message, well under the kernel's SCM_MAX_FD (253).
const CHUNK: usize = 64;
/// The largest message: a hand-over chunk's numbers, an event line, an error.
const MAX_MESSAGE: usize = 64 * 1024;

const USERNS_READY: u8 = b'u';
const FDS: u8 = b'F';
const END: u8 = b'E';
const LAYER: u8 = b'L';
const LAYERS_DONE: u8 = b'D';
const NETWORK: u8 = b'N';
const TERMINAL: u8 = b'T';
const EVENT: u8 = b'e';
const FAILURE: u8 = b'x';

/// One message: its tag, bytes, descriptors and (on the supervisor's end) its sender's pid.
struct Message {
    tag: u8,
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    sender: Option<i32>,
}

/// Sends one message with `fds` attached.
fn send(sock: BorrowedFd<'_>, tag: u8, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(CHUNK))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let tag = [tag];
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&tag), IoSlice::new(data)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// What a receive gave.
enum Received {
    Message(Message),
    /// The other end is closed.
    Closed,
    /// Nothing waiting (only without blocking).
    Nothing,
}

/// Receives one message.
fn recv(sock: BorrowedFd<'_>, nonblocking: bool) -> io::Result<Received> {
    let mut data = vec![0u8; MAX_MESSAGE];
    let mut space =
        [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(CHUNK), ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    let r = loop {
        match rustix::net::recvmsg(sock, &mut [IoSliceMut::new(&mut data)], &mut control, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) if nonblocking => return Ok(Received::Nothing),
            r => break r?,
        }
    };
    let mut fds = Vec::new();
    let mut sender = None;
    for m in control.drain() {
        match m {
            RecvAncillaryMessage::ScmRights(received) => fds.extend(received),
            RecvAncillaryMessage::ScmCredentials(c) => sender = Some(c.pid.as_raw_nonzero().get()),
            _ => {}
        }
    }
    if r.bytes == 0 {
        return Ok(Received::Closed);
    }
    if r.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        return Err(io::Error::other("a message too long for the channel"));
    }
    data.truncate(r.bytes);
    let tag = data.remove(0);
    Ok(Received::Message(Message {
        tag,
        data,
        fds,
        sender,
    }))
}

/// A message, waiting for it; an error when the other end closed.
fn recv_message(sock: BorrowedFd<'_>, what: &str) -> Result<Message> {
    match recv(sock, false).ctx(what)? {
        Received::Message(m) => Ok(m),
        _ => Err(Error::msg(what, "the other end went away")),
    }
}

/// What the supervisor reads from the pod.
pub enum FromPod {
    /// An event of the init's, with a pidfd for `started`.
    Event(Event, Option<OwnedFd>),
    /// The pty master of the app with a terminal.
    Terminal(OwnedFd),
    /// The first process or the init gave up before it could report.
    Failure(Error),
    /// A message from another process than the pod's init, ignored.
    Forged { sender: Option<i32> },
    /// Something no version of the init sends.
    Garbled,
    /// The pod's end is closed: nothing more will come.
    Closed,
}

/// The supervisor's end.
pub struct SupervisorEnd {
    sock: OwnedFd,
    /// The pod's first process, later its init (the same process): the only sender
    /// believed.
    init_pid: i32,
}

/// The pod's end: the first process's, then the init's (on [`crate::crossing::sealed::CARRY_FD`]).
pub struct PodEnd {
    sock: OwnedFd,
}

/// A new channel. Set `init_pid` on the supervisor's end once the pod's first process
/// exists ([`SupervisorEnd::expect_sender`]).
pub fn pair() -> Result<(SupervisorEnd, PodEnd)> {
    let (ours, theirs) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ctx("socketpair")?;
    // Before anything is sent: each message then carries its sender's credentials.
    rustix::net::sockopt::set_socket_passcred(&ours, true).ctx("SO_PASSCRED")?;
    Ok((
        SupervisorEnd {
            sock: ours,
            init_pid: 0,
        },
        PodEnd { sock: theirs },
    ))
}

impl SupervisorEnd {
    /// The process whose messages are believed: the pod's first process (then init).
    pub fn expect_sender(&mut self, init_pid: i32) {
        self.init_pid = init_pid;
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// With a user namespace: its id maps are written; the first process may become its
    /// root.
    pub fn user_namespace_ready(&self) -> Result<()> {
        send(self.sock.as_fd(), USERNS_READY, &[], &[])
            .ctx("telling the first process its user namespace is ready")
    }

    /// Why the first process (or the init, before its first report) gave up, if it said
    /// so before exiting. Does not wait.
    pub fn failure(&self) -> Option<Error> {
        match recv(self.sock.as_fd(), true).ok()? {
            Received::Message(Message {
                tag: FAILURE,
                data,
                sender,
                ..
            }) if sender == Some(self.init_pid) => Error::decode(&data),
            _ => None,
        }
    }

    /// Sends the hand-over (`memfd`, its JSON) and every descriptor it names (`named`), in
    /// chunks, then an end mark. The hand-over holds our numbers for those descriptors;
    /// the init renumbers them on arrival.
    pub fn send_handover(&self, memfd: BorrowedFd<'_>, named: &[BorrowedFd<'_>]) -> Result<()> {
        let all: Vec<BorrowedFd<'_>> = std::iter::once(memfd)
            .chain(named.iter().copied())
            .collect();
        for chunk in all.chunks(CHUNK) {
            let numbers: Vec<u8> = chunk
                .iter()
                .flat_map(|fd| fd.as_raw_fd().to_le_bytes())
                .collect();
            send(self.sock.as_fd(), FDS, &numbers, chunk).ctx("sending descriptors")?;
        }
        send(self.sock.as_fd(), END, &[], &[]).ctx("ending the hand-over")
    }

    /// Sends each idmapped layer, in order, then an end mark.
    pub fn send_layers(&self, layers: impl IntoIterator<Item = Result<OwnedFd>>) -> Result<()> {
        for layer in layers {
            let layer = layer?;
            send(self.sock.as_fd(), LAYER, &[], &[layer.as_fd()]).ctx("passing a layer")?;
        }
        send(self.sock.as_fd(), LAYERS_DONE, &[], &[]).ctx("ending the layers")
    }

    /// The pod's networks are up: the settings its init writes before any app starts.
    pub fn send_network(&self, ready: &NetworkReady) -> Result<()> {
        let memfd = crate::crossing::network::to_memfd(ready).ctx("the network settings")?;
        send(self.sock.as_fd(), NETWORK, &[], &[memfd.as_fd()])
            .ctx("handing the network settings over")
    }

    /// The next message from the pod, without waiting: None when none is waiting,
    /// [`FromPod::Closed`] once the pod's end is closed.
    pub fn recv(&self) -> io::Result<Option<FromPod>> {
        let m = match recv(self.sock.as_fd(), true)? {
            Received::Message(m) => m,
            Received::Nothing => return Ok(None),
            Received::Closed => return Ok(Some(FromPod::Closed)),
        };
        if m.sender != Some(self.init_pid) {
            return Ok(Some(FromPod::Forged { sender: m.sender }));
        }
        let mut fds = m.fds.into_iter();
        Ok(Some(match m.tag {
            EVENT => match std::str::from_utf8(&m.data).ok().and_then(Event::parse) {
                Some(e) => FromPod::Event(e, fds.next()),
                None => FromPod::Garbled,
            },
            TERMINAL => match fds.next() {
                Some(master) => FromPod::Terminal(master),
                None => FromPod::Garbled,
            },
            FAILURE => match Error::decode(&m.data) {
                Some(e) => FromPod::Failure(e),
                None => FromPod::Garbled,
            },
            _ => FromPod::Garbled,
        }))
    }
}

impl PodEnd {
    /// The init's end, left open on [`crate::crossing::sealed::CARRY_FD`] by the exec.
    ///
    /// # Safety
    /// `fd` must be that socket, owned by nothing else.
    pub unsafe fn from_carried(fd: RawFd) -> PodEnd {
        PodEnd {
            sock: std::os::fd::FromRawFd::from_raw_fd(fd),
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Waits for the supervisor to write our id maps. Allocation-free until it fails.
    pub fn wait_user_namespace_ready(&self) -> Result<()> {
        let mut byte = [0u8; 1];
        match rustix::io::read(&self.sock, &mut byte) {
            Ok(1) if byte[0] == USERNS_READY => Ok(()),
            Ok(_) => Err(Error::msg(
                "waiting for the id maps",
                "the supervisor went away",
            )),
            Err(e) => Err(Error::os("waiting for the id maps", e.raw_os_error())),
        }
    }

    /// Why we give up, for [`SupervisorEnd::failure`].
    pub fn fail(&self, e: &Error) {
        let _ = send(self.sock.as_fd(), FAILURE, &e.encode(), &[]);
    }

    /// Receives what [`SupervisorEnd::send_handover`] sent: the hand-over, its
    /// descriptors renumbered to ours.
    pub fn receive_handover(&self) -> Result<Handover> {
        let received = self.receive_descriptors("receiving the pod")?;
        let mut received = received.into_iter();
        let (_, memfd) = received
            .next()
            .ok_or_else(|| Error::msg("receiving the pod", "no hand-over was sent"))?;
        let mut json = Vec::new();
        std::fs::File::from(memfd)
            .read_to_end(&mut json)
            .ctx("reading the hand-over")?;
        let mut handover: Handover = serde_json::from_slice(&json)
            .map_err(|e| Error::msg("parsing the hand-over", e.to_string()))?;
        // From here the descriptors are the hand-over's, by number: stop owning them.
        let ours: std::collections::HashMap<RawFd, RawFd> = received
            .map(|(theirs, fd)| (theirs, fd.into_raw_fd()))
            .collect();
        for fd in handover.descriptors_mut() {
            *fd = *ours.get(fd).ok_or_else(|| {
                Error::msg(
                    "receiving the pod",
                    format!("the hand-over names descriptor {fd}, never sent"),
                )
            })?;
        }
        Ok(handover)
    }

    /// Receives the descriptors [`SupervisorEnd::send_handover`] sent, in order, each with
    /// the sender's number for it (the hand-over's memfd first). The pod's init reads a
    /// [`Handover`] from them; the OCI runtime's container process its own plan.
    pub fn receive_descriptors(&self, what: &str) -> Result<Vec<(RawFd, OwnedFd)>> {
        let mut received: Vec<(RawFd, OwnedFd)> = Vec::new();
        loop {
            let m = recv_message(self.sock.as_fd(), what)?;
            match m.tag {
                END => return Ok(received),
                FDS => {
                    let numbers = m
                        .data
                        .chunks_exact(4)
                        .map(|b| RawFd::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    if numbers.len() != m.fds.len() {
                        return Err(Error::msg(what, "descriptors went missing on the way"));
                    }
                    received.extend(numbers.zip(m.fds));
                }
                _ => {
                    return Err(Error::msg(
                        what,
                        "an unexpected message from the supervisor",
                    ))
                }
            }
        }
    }

    /// Receives what [`SupervisorEnd::send_layers`] sent.
    pub fn receive_layers(&self) -> Result<Vec<OwnedFd>> {
        let mut out = Vec::new();
        loop {
            let m = recv_message(self.sock.as_fd(), "receiving the layers")?;
            match (m.tag, m.fds.into_iter().next()) {
                (LAYER, Some(fd)) => out.push(fd),
                (LAYERS_DONE, _) => return Ok(out),
                _ => {
                    return Err(Error::msg(
                        "receiving the layers",
                        "an unexpected message from the supervisor",
                    ))
                }
            }
        }
    }

    /// Waits for [`SupervisorEnd::send_network`]. An error (the supervisor closed the
    /// channel, having failed to set the networks up) means no app may start.
    pub fn receive_network(&self) -> Result<NetworkReady> {
        let m = match recv(self.sock.as_fd(), false).ctx("receiving the network settings")? {
            Received::Message(m) => m,
            _ => {
                return Err(Error::msg(
                    "receiving the network settings",
                    "the supervisor ended before the pod's networks were up",
                ))
            }
        };
        match (m.tag, m.fds.into_iter().next()) {
            (NETWORK, Some(fd)) => {
                crate::crossing::network::from_memfd(fd).ctx("reading the network settings")
            }
            _ => Err(Error::msg(
                "receiving the network settings",
                "an unexpected message from the supervisor",
            )),
        }
    }

    /// Hands the pty master of the app with a terminal to the supervisor.
    pub fn send_terminal(&self, master: BorrowedFd<'_>) -> Result<()> {
        send(self.sock.as_fd(), TERMINAL, &[], &[master]).ctx("handing the terminal over")
    }

    /// Reports an event to the supervisor, with a descriptor for `started` (the app's
    /// pidfd). The supervisor is our parent: if it is gone, so are we (PDEATHSIG).
    pub fn report(&self, event: &Event, fd: Option<BorrowedFd<'_>>) {
        let line = event.to_string();
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        let _ = send(self.sock.as_fd(), EVENT, line.trim_end().as_bytes(), &fds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn handover_memfd(h: &Handover) -> OwnedFd {
        let memfd = rustix::fs::memfd_create("plan", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut f = std::fs::File::from(memfd);
        f.write_all(&serde_json::to_vec(h).unwrap()).unwrap();
        f.rewind().unwrap();
        f.into()
    }

    #[test]
    fn descriptors_arrive_renumbered_in_chunks() {
        let (ours, theirs) = pair().unwrap();
        // More descriptors than one message carries.
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..100)
            .map(|_| rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap())
            .collect();
        let h = Handover {
            init_cgroup_fds: pipes.iter().map(|(_, w)| w.as_raw_fd()).collect(),
            ..Handover::default()
        };
        let memfd = handover_memfd(&h);
        let named: Vec<BorrowedFd<'_>> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        let handed = std::thread::scope(|s| {
            let t = s.spawn(|| theirs.receive_handover());
            ours.send_handover(memfd.as_fd(), &named).unwrap();
            t.join().unwrap()
        })
        .unwrap();
        assert_eq!(handed.init_cgroup_fds.len(), 100);
        // Each renumbered descriptor is the write end of the matching pipe.
        for ((r, _), fd) in pipes.iter().zip(&handed.init_cgroup_fds) {
            rustix::io::write(unsafe { BorrowedFd::borrow_raw(*fd) }, b"x").unwrap();
            let mut byte = [0u8; 1];
            rustix::io::read(r, &mut byte).unwrap();
            assert_eq!(&byte, b"x");
        }
    }

    #[test]
    fn a_hand_over_naming_an_unsent_descriptor_is_refused() {
        let (ours, theirs) = pair().unwrap();
        let h = Handover {
            init_cgroup_fds: vec![12345],
            ..Handover::default()
        };
        let memfd = handover_memfd(&h);
        ours.send_handover(memfd.as_fd(), &[]).unwrap();
        let e = theirs.receive_handover().unwrap_err();
        assert!(e.to_string().contains("12345"), "{e}");
    }

    #[test]
    fn only_the_inits_reports_are_believed() {
        let (mut ours, theirs) = pair().unwrap();
        ours.expect_sender(std::process::id() as i32);
        let (_, w) = rustix::pipe::pipe().unwrap();
        theirs.report(&Event::Started { app: 0, pid: 7 }, Some(w.as_fd()));
        match ours.recv().unwrap() {
            Some(FromPod::Event(Event::Started { app: 0, pid: 7 }, Some(_))) => {}
            _ => panic!("the event with its descriptor"),
        }
        theirs.report(&Event::Done, None);
        // The same message, from a process that is not the init.
        ours.expect_sender(1);
        match ours.recv().unwrap() {
            Some(FromPod::Forged { sender }) => {
                assert_eq!(sender, Some(std::process::id() as i32))
            }
            _ => panic!("refused as forged"),
        }
        assert!(ours.recv().unwrap().is_none());
        drop(theirs);
        assert!(matches!(ours.recv().unwrap(), Some(FromPod::Closed)));
    }

    #[test]
    fn a_failure_says_why_and_errno() {
        let (mut ours, theirs) = pair().unwrap();
        ours.expect_sender(std::process::id() as i32);
        theirs.fail(&Error::os("execveat", libc::EACCES));
        let e = ours.failure().unwrap();
        assert_eq!(e.errno(), Some(libc::EACCES));
        assert!(e.to_string().starts_with("execveat"), "{e}");
    }
}
