//! The console socket protocol of OCI runtimes (runc's `--console-socket`): the runtime
//! connects to the client's unix socket and sends the terminal's master with SCM_RIGHTS,
//! the message's bytes naming it. containerd's shim and conmon read it that way.

use std::io;
use std::os::fd::BorrowedFd;

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
