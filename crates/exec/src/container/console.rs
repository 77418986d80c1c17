//! The console socket protocol of OCI runtimes (runc's `--console-socket`): the runtime
//! connects to the client's unix socket and sends the terminal's master with SCM_RIGHTS,
//! the message's bytes naming it. containerd's shim and conmon read it that way.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Sends `master` over `sock` (connected to the client's console socket).
pub fn send_master(sock: BorrowedFd<'_>, master: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [master];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        sock,
        &[io::IoSlice::new(b"/dev/ptmx")],
        &mut control,
        rustix::net::SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// The client's side: receives the master a runtime sent over `sock` (the runtime's own
/// foreground relay uses it: `vessel-runtime run` and `exec` with a terminal and no
/// console socket).
pub fn receive_master(sock: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 64];
    rustix::net::recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut name)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )?;
    for msg in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return Ok(fd);
            }
        }
    }
    Err(io::Error::other(
        "the container's process sent no terminal (it ended before opening one)",
    ))
}
