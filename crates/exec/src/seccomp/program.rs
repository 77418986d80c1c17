//! A compiled filter: plain BPF instructions, serialised for the cache and the hand-over,
//! and loaded by the app's process with one async-signal-safe call.

use nix::errno::Errno;

use super::SeccompError;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub(super) const MAX_INSTRUCTIONS: usize = 4096;

/// A compiled filter, ready to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompProgram {
    pub(super) instructions: Vec<SockFilter>,
    pub(super) flags: u32,
    pub(super) skipped: Vec<String>,
}

const CACHE_MAGIC: &[u8; 8] = b"VSECCMP1";

impl SeccompProgram {
    pub fn instructions(&self) -> &[SockFilter] {
        &self.instructions
    }

    /// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Syscalls left out because the installed libseccomp cannot name them
    /// (see the module docs); callers may warn about them.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Serialises the program for a cache: magic, flags, then the
    /// instructions, in host byte order (a cache is per host).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.instructions.len() * 8);
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&(self.instructions.len() as u32).to_ne_bytes());
        for insn in &self.instructions {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    /// Reads what [`SeccompProgram::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        let rest = bytes
            .strip_prefix(CACHE_MAGIC.as_slice())
            .ok_or(SeccompError::InvalidCache("bad magic"))?;
        if rest.len() < 8 {
            return Err(SeccompError::InvalidCache("truncated header"));
        }
        let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let flags = word(&rest[0..4]);
        let count = word(&rest[4..8]) as usize;
        let body = &rest[8..];
        if body.len() != count * 8 || count == 0 || count > MAX_INSTRUCTIONS {
            return Err(SeccompError::InvalidCache("bad instruction count"));
        }
        let instructions = body
            .chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: word(&c[4..8]),
            })
            .collect();
        Ok(SeccompProgram {
            instructions,
            flags,
            skipped: Vec::new(),
        })
    }

    /// Installs the filter on the calling thread with seccomp(2) (or prctl
    /// on kernels without it). Async-signal-safe: no allocation.
    ///
    /// The kernel requires no_new_privs or CAP_SYS_ADMIN. Load it as the
    /// last step before execve (after capabilities and the user switch, so
    /// the filter need not allow those calls), except when no_new_privs is
    /// off and CAP_SYS_ADMIN is being dropped: then load it before dropping.
    pub fn load(&self) -> Result<(), Errno> {
        let program = libc::sock_fprog {
            len: self.instructions.len() as libc::c_ushort,
            filter: self.instructions.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `program` points at our instructions, laid out as
        // `struct sock_filter`; the kernel copies them during the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &program as *const libc::sock_fprog,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let errno = Errno::last();
        if errno != Errno::ENOSYS || self.flags != 0 {
            return Err(errno);
        }
        // SAFETY: as above, through the older prctl interface.
        let ret = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        Errno::result(ret).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::CapabilitySet;
    use crate::seccomp::{compile, default_profile};

    #[test]
    fn cache_round_trip() {
        let program = compile(&default_profile(CapabilitySet::docker_default())).unwrap();
        let bytes = program.to_bytes();
        let back = SeccompProgram::from_bytes(&bytes).unwrap();
        assert_eq!(back.instructions(), program.instructions());
        assert_eq!(back.flags(), program.flags());
        assert!(SeccompProgram::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(SeccompProgram::from_bytes(b"nonsense").is_err());
    }
}
