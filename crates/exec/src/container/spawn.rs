//! The runtime's side of a container's process: clone it (`Embryo::spawn_as`), write its
//! user namespace's maps, hand it its plan and descriptors, then read its reports.

use std::io::{Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::plan::{ContainerPlan, Failure, Namespaces, Report, COMMIT, GO};
use crate::crossing::embryo::Embryo;

/// A container's process that has not been committed: dropped, it is killed and reaped.
pub struct Spawned {
    embryo: Embryo,
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.embryo.pid
    }

    /// The next report; a process that died says so.
    pub fn report(&self) -> Result<Report, Failure> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match rustix::net::recv(
                self.embryo.channel.as_fd(),
                &mut buf,
                rustix::net::RecvFlags::empty(),
            ) {
                Ok((n, _)) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Failure::io("reading the container's reports", e)),
            }
        };
        if n == 0 {
            return Err(Failure::msg(
                "starting the container's process",
                "it exited before it was set up",
            ));
        }
        serde_json::from_slice(&buf[..n]).map_err(|_| {
            // Not one of our reports: the embryo's own last word (the channel's failure
            // message, an encoded exec::error::Error after its tag) before the exec.
            let why = buf
                .get(1..n)
                .and_then(crate::error::Error::decode)
                .map(|e| e.to_string())
                .unwrap_or_else(|| "an unreadable report".into());
            Failure::msg("starting the container's process", why)
        })
    }

    /// The runtime's hooks ran: the process goes on setting up.
    pub fn go(&self) -> Result<(), Failure> {
        rustix::net::send(
            self.embryo.channel.as_fd(),
            &[GO],
            rustix::net::SendFlags::empty(),
        )
        .map(drop)
        .map_err(|e| Failure::io("resuming the container's process", e))
    }

    /// The container is recorded: from here the process lives on its own. Returns its pid
    /// and pidfd.
    pub fn commit(self) -> Result<(i32, OwnedFd), Failure> {
        rustix::net::send(
            self.embryo.channel.as_fd(),
            &[COMMIT],
            rustix::net::SendFlags::empty(),
        )
        .map_err(|e| Failure::io("committing the container's process", e))?;
        let (pid, pidfd, _sock) = self.embryo.disarm();
        Ok((pid, pidfd))
    }

    /// `commit`, then waits until the process exec'd its program (or died): its end of
    /// the socket is close-on-exec (`exec`: the command returns once the program runs).
    pub fn commit_until_exec(self) -> Result<(i32, OwnedFd), Failure> {
        rustix::net::send(
            self.embryo.channel.as_fd(),
            &[COMMIT],
            rustix::net::SendFlags::empty(),
        )
        .map_err(|e| Failure::io("committing the container's process", e))?;
        let (pid, pidfd, sock) = self.embryo.disarm();
        let mut buf = [0u8; 64];
        loop {
            match rustix::net::recv(sock.as_fd(), &mut buf, rustix::net::RecvFlags::empty()) {
                Ok((0, _)) => break,
                Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        Ok((pid, pidfd))
    }
}

/// Clones the container's process into the namespaces of `ns` and hands it `plan` with
/// `fds` (in the order of `plan.fds`).
/// `complete` fills in what needs the process's pid before it is sent (the hooks' state;
/// with systemd, the unit that takes the pid and the cgroup descriptors only then open):
/// the descriptors it returns go after `fds`, their roles appended to `plan.fds` by it.
pub fn spawn(
    mut plan: ContainerPlan,
    fds: &[BorrowedFd<'_>],
    ns: &Namespaces,
    complete: impl FnOnce(&mut ContainerPlan, i32) -> Result<Vec<OwnedFd>, Failure>,
) -> Result<Spawned, Failure> {
    if let Some(path) = &ns.join_pid {
        // A pid namespace applies to the children of whoever enters it.
        let fd = rustix::fs::open(
            path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Failure::io(format!("opening pid namespace {}", path.display()), e))?;
        rustix::thread::move_into_link_name_space(
            fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::ProcessID),
        )
        .map_err(|e| Failure::io(format!("joining pid namespace {}", path.display()), e))?;
    }
    let embryo = Embryo::spawn_as(ns.clone, super::INIT_ARGV0)
        .map_err(|e| Failure::from_error("cloning the container's process", e))?;
    if ns.clone & libc::CLONE_NEWUSER != 0 {
        write_maps(embryo.pid, &plan.spec)
            .map_err(|e| Failure::io("writing the user namespace's id maps", e))?;
        embryo
            .user_namespace_ready()
            .map_err(|e| Failure::from_error("the user namespace", e))?;
    }
    plan.cpus = embryo.cpus.clone();
    let extra = complete(&mut plan, embryo.pid)?;
    let mut all: Vec<BorrowedFd<'_>> = fds.to_vec();
    all.extend(extra.iter().map(|f| f.as_fd()));
    let plan_fd =
        rustix::fs::memfd_create("vessel-container-plan", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| Failure::io("memfd", e))?;
    {
        let mut f = std::fs::File::from(plan_fd.try_clone().map_err(|e| Failure::io("memfd", e))?);
        f.write_all(&serde_json::to_vec(&plan).expect("serialisable"))
            .and_then(|()| f.rewind().map(drop))
            .map_err(|e| Failure::io("writing the plan", e))?;
    }
    embryo
        .channel
        .send_handover(plan_fd.as_fd(), &all)
        .map_err(|e| Failure::from_error("handing the container's process its plan", e))?;
    Ok(Spawned { embryo })
}

/// Writes the spec's uid and gid mappings for the process `pid`.
fn write_maps(pid: i32, spec: &oci_spec::runtime::Spec) -> std::io::Result<()> {
    let linux = spec.linux().as_ref();
    let lines = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
        maps.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    let uid = lines(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = lines(linux.and_then(|l| l.gid_mappings().as_ref()));
    std::fs::write(format!("/proc/{pid}/uid_map"), uid)?;
    std::fs::write(format!("/proc/{pid}/gid_map"), gid)
}
