//! How the supervisor hands the pod to its init over their socket: the plan (in a memfd),
//! the status pipe, and every descriptor the plan names (the apps' stdio and cgroup.procs
//! files), passed with SCM_RIGHTS in chunks. The plan holds the supervisor's numbers for
//! those descriptors; the init rewrites them to the numbers it received them under.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use crate::plan::PodPlan;

/// Descriptors per message, well under the kernel's SCM_MAX_FD (253).
const CHUNK: usize = 64;
const FDS: u8 = b'F';
const END: u8 = b'E';

/// What the init receives.
pub struct Handed {
    pub plan: PodPlan,
    /// Write end of the status pipe to the supervisor.
    pub status: OwnedFd,
}

/// Sends the plan and every descriptor it names, then an end mark.
pub fn send(
    sock: BorrowedFd<'_>,
    plan: BorrowedFd<'_>,
    status: BorrowedFd<'_>,
    named: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let all: Vec<BorrowedFd<'_>> = [plan, status]
        .into_iter()
        .chain(named.iter().copied())
        .collect();
    for chunk in all.chunks(CHUNK) {
        let mut data = vec![FDS];
        for fd in chunk {
            data.extend_from_slice(&fd.as_raw_fd().to_le_bytes());
        }
        let mut space =
            vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(CHUNK))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(chunk)) {
            return Err(io::Error::other("too many descriptors for one message"));
        }
        rustix::net::sendmsg(
            sock,
            &[io::IoSlice::new(&data)],
            &mut control,
            SendFlags::empty(),
        )?;
    }
    rustix::net::send(sock, &[END], SendFlags::empty())?;
    Ok(())
}

/// Receives what `send` sent and returns the plan with its descriptors renumbered.
pub fn receive(sock: BorrowedFd<'_>) -> io::Result<Handed> {
    // The supervisor's number of each descriptor, to ours.
    let mut received: Vec<(RawFd, OwnedFd)> = Vec::new();
    loop {
        let mut data = vec![0u8; 1 + 4 * CHUNK];
        let mut space =
            vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(CHUNK))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let r = rustix::net::recvmsg(
            sock,
            &mut [io::IoSliceMut::new(&mut data)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        let fds: Vec<OwnedFd> = control
            .drain()
            .filter_map(|m| match m {
                RecvAncillaryMessage::ScmRights(fds) => Some(fds),
                _ => None,
            })
            .flatten()
            .collect();
        match data.first() {
            _ if r.bytes == 0 => return Err(io::Error::other("the supervisor went away")),
            Some(&END) => break,
            Some(&FDS) => {
                let numbers = data[1..r.bytes]
                    .chunks_exact(4)
                    .map(|b| RawFd::from_le_bytes([b[0], b[1], b[2], b[3]]));
                if numbers.len() != fds.len() {
                    return Err(io::Error::other("descriptors went missing on the way"));
                }
                received.extend(numbers.zip(fds));
            }
            _ => {
                return Err(io::Error::other(
                    "an unexpected message from the supervisor",
                ))
            }
        }
    }
    let mut received = received.into_iter();
    let (Some((_, plan_fd)), Some((_, status))) = (received.next(), received.next()) else {
        return Err(io::Error::other("the supervisor sent no plan"));
    };
    let mut json = Vec::new();
    std::fs::File::from(plan_fd).read_to_end(&mut json)?;
    let mut plan: PodPlan = serde_json::from_slice(&json)
        .map_err(|e| io::Error::other(format!("parsing the plan: {e}")))?;
    // From here the descriptors are the plan's, by number: stop owning them.
    let ours: HashMap<RawFd, RawFd> = received
        .map(|(theirs, fd)| (theirs, fd.into_raw_fd()))
        .collect();
    renumber(&mut plan, &ours)?;
    Ok(Handed { plan, status })
}

/// Rewrites every descriptor number in the plan through `map`.
fn renumber(plan: &mut PodPlan, map: &HashMap<RawFd, RawFd>) -> io::Result<()> {
    let look = |fd: &mut RawFd| -> io::Result<()> {
        *fd = *map.get(fd).ok_or_else(|| {
            io::Error::other(format!("the plan names descriptor {fd}, never sent"))
        })?;
        Ok(())
    };
    for fd in plan.init_cgroup_fds.iter_mut() {
        look(fd)?;
    }
    for app in plan.apps.iter_mut() {
        for fd in app
            .cgroup_fds
            .iter_mut()
            .chain(app.cgroup_v2_dir.iter_mut())
            .chain(app.cgroup_v2_procs.iter_mut())
        {
            look(fd)?;
        }
        if !app.terminal {
            for fd in app.stdio.iter_mut() {
                look(fd)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};
    use std::os::fd::AsFd;

    #[test]
    fn descriptors_arrive_renumbered_in_chunks() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        // More descriptors than one message carries.
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..100)
            .map(|_| rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap())
            .collect();
        let plan = PodPlan {
            init_cgroup_fds: pipes.iter().map(|(_, w)| w.as_raw_fd()).collect(),
            ..PodPlan::default()
        };
        let memfd = rustix::fs::memfd_create("plan", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut f = std::fs::File::from(memfd);
        f.write_all(&serde_json::to_vec(&plan).unwrap()).unwrap();
        f.rewind().unwrap();
        let (_status_r, status_w) = rustix::pipe::pipe().unwrap();
        let named: Vec<BorrowedFd<'_>> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        let sender = std::thread::scope(|s| {
            let h = s.spawn(|| receive(b.as_fd()));
            send(a.as_fd(), f.as_fd(), status_w.as_fd(), &named).unwrap();
            h.join().unwrap()
        });
        let handed = sender.unwrap();
        assert_eq!(handed.plan.init_cgroup_fds.len(), 100);
        // Each renumbered descriptor is the write end of the matching pipe.
        for ((r, _), fd) in pipes.iter().zip(&handed.plan.init_cgroup_fds) {
            assert_ne!(*fd, -1);
            rustix::io::write(unsafe { BorrowedFd::borrow_raw(*fd) }, b"x").unwrap();
            let mut byte = [0u8; 1];
            rustix::io::read(r, &mut byte).unwrap();
            assert_eq!(&byte, b"x");
        }
    }

    #[test]
    fn a_plan_naming_an_unsent_descriptor_is_refused() {
        let mut plan = PodPlan {
            init_cgroup_fds: vec![12345],
            ..PodPlan::default()
        };
        let e = renumber(&mut plan, &HashMap::new()).unwrap_err();
        assert!(e.to_string().contains("12345"), "{e}");
    }
}
