//! The cgroup v2 device filter: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, generated from [`DeviceRule`]s and attached
//! with bpf(2).
//!
//! The kernel runs the program on every device open or mknod in the cgroup
//! with a `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where `access_type` is `(access << 16) | type`; returning 1 allows, 0
//! denies. Rules are checked from last to first and the first match decides,
//! which gives the v1 meaning "later rules override earlier ones". An allow
//! rule matches when every requested access is in the rule; a deny rule when
//! any requested access is in it.
//!
//! Attaching uses `BPF_F_ALLOW_MULTI` so a parent's filter (systemd's, say)
//! still applies; replacing a filter attaches the new program first and then
//! detaches the old ones, so the cgroup is never left unfiltered.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::devices::{DeviceAccess, DeviceKind, DeviceRule};
use super::CgroupError;

// Values from <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

/// Size of one `struct bpf_insn`.
pub const INSN_SIZE: usize = 8;

// Instruction opcodes (class | operation | source).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const ALU32_MOV_X: u8 = 0xbc; // dst = src
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto +off
const JMP_JEQ_K: u8 = 0x15; // if dst == imm goto +off
const JMP_EXIT: u8 = 0x95;

// Registers: r1 holds the context on entry, r0 the verdict on exit.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    fn encode(self, out: &mut Vec<u8>) {
        out.push(self.code);
        // The register nibbles follow the bitfield order of the host ABI.
        #[cfg(target_endian = "little")]
        out.push((self.src << 4) | self.dst);
        #[cfg(target_endian = "big")]
        out.push((self.dst << 4) | self.src);
        out.extend_from_slice(&self.off.to_ne_bytes());
        out.extend_from_slice(&self.imm.to_ne_bytes());
    }
}

/// The instructions checking one rule; they jump to the end of the block
/// when the rule does not match.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    // Each test is `(insns before the jump, jump)` with the jump's offset
    // patched once the block length is known.
    let mut tests: Vec<(Vec<Insn>, Insn)> = Vec::new();
    let kind = match rule.kind {
        DeviceKind::All => None,
        DeviceKind::Char => Some(BPF_DEVCG_DEV_CHAR),
        DeviceKind::Block => Some(BPF_DEVCG_DEV_BLOCK),
    };
    if let Some(kind) = kind {
        tests.push((vec![], Insn::new(JMP_JNE_K, R_TYPE, 0, 0, kind)));
    }
    if rule.access != DeviceAccess::ALL {
        let rule_bits = i32::from(rule.access.bits());
        if rule.allow {
            // Skip unless (requested & !rule) == 0.
            tests.push((
                vec![
                    Insn::new(ALU32_MOV_X, R1, R_ACCESS, 0, 0),
                    Insn::new(ALU32_AND_K, R1, 0, 0, !rule_bits & 7),
                ],
                Insn::new(JMP_JNE_K, R1, 0, 0, 0),
            ));
        } else {
            // Skip unless (requested & rule) != 0.
            tests.push((
                vec![
                    Insn::new(ALU32_MOV_X, R1, R_ACCESS, 0, 0),
                    Insn::new(ALU32_AND_K, R1, 0, 0, rule_bits),
                ],
                Insn::new(JMP_JEQ_K, R1, 0, 0, 0),
            ));
        }
    }
    // Numbers are checked to fit in i32 when rules are built, so the
    // sign-extended immediate compares equal to the zero-extended field.
    if let Some(major) = rule.major {
        tests.push((vec![], Insn::new(JMP_JNE_K, R_MAJOR, 0, 0, major as i32)));
    }
    if let Some(minor) = rule.minor {
        tests.push((vec![], Insn::new(JMP_JNE_K, R_MINOR, 0, 0, minor as i32)));
    }
    let verdict = [
        Insn::new(ALU64_MOV_K, R0, 0, 0, i32::from(rule.allow)),
        Insn::new(JMP_EXIT, 0, 0, 0, 0),
    ];
    let total: usize = tests.iter().map(|(pre, _)| pre.len() + 1).sum::<usize>() + verdict.len();
    let mut block = Vec::with_capacity(total);
    for (pre, mut jump) in tests {
        block.extend(pre);
        // Offsets count from the instruction after the jump to the block end.
        jump.off = (total - block.len() - 1) as i16;
        block.push(jump);
    }
    block.extend(verdict);
    block
}

/// Builds the device filter for `rules` as raw `struct bpf_insn` bytes.
/// Devices no rule matches are denied.
pub fn device_filter_program(rules: &[DeviceRule]) -> Vec<u8> {
    let mut insns = vec![
        Insn::new(LDX_MEM_W, R_TYPE, R1, 0, 0),
        Insn::new(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, R_ACCESS, R1, 0, 0),
        Insn::new(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        Insn::new(LDX_MEM_W, R_MAJOR, R1, 4, 0),
        Insn::new(LDX_MEM_W, R_MINOR, R1, 8, 0),
    ];
    let mut open_ended = true;
    for rule in rules.iter().rev() {
        insns.extend(rule_block(rule));
        let matches_everything = rule.kind == DeviceKind::All
            && rule.major.is_none()
            && rule.minor.is_none()
            && rule.access == DeviceAccess::ALL;
        if matches_everything {
            // Anything after it would be unreachable, which the verifier rejects.
            open_ended = false;
            break;
        }
    }
    if open_ended {
        insns.push(Insn::new(ALU64_MOV_K, R0, 0, 0, 0));
        insns.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    }
    let mut bytes = Vec::with_capacity(insns.len() * INSN_SIZE);
    for insn in insns {
        insn.encode(&mut bytes);
    }
    bytes
}

// The leading parts of `union bpf_attr` for each command; the kernel treats
// the missing tail as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, initialised repr(C) prefix of union bpf_attr of
    // the size passed; the kernel reads and writes only within it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn fd_from(ret: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this new descriptor to us.
    unsafe { OwnedFd::from_raw_fd(ret as RawFd) }
}

/// Loads `program` (from [`device_filter_program`]) into the kernel. On a
/// verifier error the message includes the verifier's log.
fn load(program: &[u8]) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (program.len() / INSN_SIZE) as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            // Load again with a log so the error says why.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match bpf(BPF_PROG_LOAD, &mut attr) {
                Ok(fd) => Ok(fd_from(fd)),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{err}; verifier: {}", text.trim()),
                    ))
                }
            }
        }
        Err(err) => Err(err),
    }
}

/// Ids of the device programs attached directly to the cgroup `dir_fd`.
fn attached_programs(dir_fd: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = ProgQueryAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Installs `program` as the device filter of the cgroup v2 directory
/// `cgroup_dir`, replacing any filter attached to that cgroup before.
pub fn attach_device_filter(cgroup_dir: &Path, program: &[u8]) -> Result<(), CgroupError> {
    let fail = |op: &'static str| {
        move |source: io::Error| CgroupError::Bpf {
            op,
            path: cgroup_dir.to_path_buf(),
            source,
        }
    };
    let dir = File::open(cgroup_dir).map_err(fail("open cgroup for"))?;
    let old = attached_programs(&dir).map_err(fail("query"))?;
    let prog = load(program).map_err(fail("load"))?;
    let mut attach = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(fail("attach"))?;
    for id in old {
        let mut by_id = GetFdByIdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old_prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut by_id) {
            Ok(fd) => fd_from(fd),
            // Detached and freed meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(fail("find old")(e)),
        };
        let mut detach = ProgAttachAttr {
            target_fd: dir.as_raw_fd() as u32,
            attach_bpf_fd: old_prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(fail("detach old")(e)),
        }
    }
    Ok(())
}

/// How many device programs are attached directly to `cgroup_dir`.
pub fn attached_device_filters(cgroup_dir: &Path) -> Result<usize, CgroupError> {
    let fail = |source| CgroupError::Bpf {
        op: "query",
        path: cgroup_dir.to_path_buf(),
        source,
    };
    let dir = File::open(cgroup_dir).map_err(fail)?;
    Ok(attached_programs(&dir).map_err(fail)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<(u8, u8, u8, i16, i32)> {
        bytes
            .chunks(INSN_SIZE)
            .map(|c| {
                let regs = c[1];
                (
                    c[0],
                    regs & 0xf,
                    regs >> 4,
                    i16::from_ne_bytes([c[2], c[3]]),
                    i32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect()
    }

    /// Runs the program on one request the way the kernel would, to check
    /// the meaning and not just the bytes.
    fn run(program: &[u8], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
        let insns = decode(program);
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let (code, dst, src, off, imm) = insns[pc];
            let (dst, src) = (dst as usize, src as usize);
            pc += 1;
            match code {
                LDX_MEM_W => {
                    assert_eq!(src, 1);
                    regs[dst] = u64::from(ctx[off as usize / 4]);
                }
                ALU32_AND_K => regs[dst] = u64::from(regs[dst] as u32 & imm as u32),
                ALU32_RSH_K => regs[dst] = u64::from((regs[dst] as u32) >> imm),
                ALU32_MOV_X => regs[dst] = u64::from(regs[src] as u32),
                ALU64_MOV_K => regs[dst] = imm as i64 as u64,
                JMP_JNE_K => {
                    if regs[dst] != imm as i64 as u64 {
                        pc += off as usize;
                    }
                }
                JMP_JEQ_K => {
                    if regs[dst] == imm as i64 as u64 {
                        pc += off as usize;
                    }
                }
                JMP_EXIT => return regs[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const R: u8 = 2;
    const W: u8 = 4;
    const M: u8 = 1;
    const C: i32 = BPF_DEVCG_DEV_CHAR;
    const B: i32 = BPF_DEVCG_DEV_BLOCK;

    #[test]
    fn default_rules_allow_the_standard_devices_only() {
        let program = device_filter_program(&DeviceRule::container_defaults());
        assert_eq!(program.len() % INSN_SIZE, 0);
        assert_eq!(run(&program, C, R | W, 1, 3), 1); // null
        assert_eq!(run(&program, C, M, 1, 9), 1); // mknod urandom
        assert_eq!(run(&program, C, R | W, 136, 42), 1); // a pty
        assert_eq!(run(&program, C, R, 1, 1), 0); // mem
        assert_eq!(run(&program, C, M, 10, 200), 0); // mknod tun
        assert_eq!(run(&program, B, R, 8, 0), 0); // sda
        assert_eq!(run(&program, B, M, 1, 3), 0); // a block device 1:3
    }

    #[test]
    fn program_starts_by_loading_the_context() {
        let insns = decode(&device_filter_program(&[]));
        assert_eq!(insns[0], (LDX_MEM_W, R_TYPE, R1, 0, 0));
        assert_eq!(insns[4], (LDX_MEM_W, R_MAJOR, R1, 4, 0));
        assert_eq!(insns[5], (LDX_MEM_W, R_MINOR, R1, 8, 0));
        // No rules: deny everything.
        assert_eq!(
            insns[6..],
            [(ALU64_MOV_K, R0, 0, 0, 0), (JMP_EXIT, 0, 0, 0, 0)]
        );
    }

    #[test]
    fn later_rules_override_and_access_is_checked_per_kind_of_rule() {
        let rules = [
            DeviceRule {
                allow: true,
                kind: DeviceKind::All,
                major: None,
                minor: None,
                access: DeviceAccess::ALL,
            },
            DeviceRule {
                allow: false,
                kind: DeviceKind::Char,
                major: Some(1),
                minor: Some(3),
                access: DeviceAccess::WRITE,
            },
            DeviceRule {
                allow: true,
                kind: DeviceKind::Block,
                major: Some(7),
                minor: None,
                access: DeviceAccess::READ,
            },
        ];
        let program = device_filter_program(&rules);
        assert_eq!(run(&program, C, R, 1, 3), 1);
        assert_eq!(run(&program, C, R | W, 1, 3), 0); // deny matches on any overlap
        assert_eq!(run(&program, C, W, 1, 5), 1);
        assert_eq!(run(&program, B, R | W, 7, 0), 1); // falls through to allow-all
                                                      // Nothing after an all-matching rule: no unreachable code.
        let insns = decode(&program);
        assert_eq!(insns.last().unwrap().0, JMP_EXIT);
        let only_allow_all = device_filter_program(&rules[..1]);
        assert_eq!(decode(&only_allow_all).len(), 8);
    }
}
