//! Linux capabilities: names, sets, and applying them to an app process.
//!
//! Sets are 64-bit masks prepared before fork; [`CapSets::apply`] then uses
//! raw prctl(2)/capset(2)/set*id(2) calls only, so it is async-signal-safe
//! and can run in the child between fork and execve. (The `caps` crate keeps
//! sets in `HashSet`s, which allocate, so it is not used for that step.)
//!
//! Order in [`CapSets::apply`], and why:
//! 1. drop from the bounding set everything not in it: needs CAP_SETPCAP,
//!    which the later steps may remove;
//! 2. if switching user, set `PR_SET_KEEPCAPS` and change groups, gid and uid:
//!    needs CAP_SETGID/CAP_SETUID in the effective set, and KEEPCAPS keeps
//!    the permitted set across the uid change (it would be cleared);
//! 3. capset(2) the effective, permitted and inheritable sets, now that no
//!    further privileged step is needed;
//! 4. clear the ambient set and raise the wanted ambient capabilities, which
//!    the kernel allows only for capabilities both permitted and inheritable.
//!    Ambient capabilities are what a non-root user keeps across execve.

use std::fmt;
use std::str::FromStr;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
    #[error("capability {cap} is in the {set} set but not in the {required} set")]
    NotInSet {
        cap: Capability,
        set: &'static str,
        required: &'static str,
    },
}

/// One capability, by its kernel number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Capability(u8);

macro_rules! capabilities {
    ($($name:ident = $number:literal,)*) => {
        impl Capability {
            $(pub const $name: Capability = Capability($number);)*
        }
        /// Names without the `CAP_` prefix, indexed by number.
        const NAMES: &[&str] = &[$(stringify!($name),)*];
    };
}

capabilities! {
    CHOWN = 0,
    DAC_OVERRIDE = 1,
    DAC_READ_SEARCH = 2,
    FOWNER = 3,
    FSETID = 4,
    KILL = 5,
    SETGID = 6,
    SETUID = 7,
    SETPCAP = 8,
    LINUX_IMMUTABLE = 9,
    NET_BIND_SERVICE = 10,
    NET_BROADCAST = 11,
    NET_ADMIN = 12,
    NET_RAW = 13,
    IPC_LOCK = 14,
    IPC_OWNER = 15,
    SYS_MODULE = 16,
    SYS_RAWIO = 17,
    SYS_CHROOT = 18,
    SYS_PTRACE = 19,
    SYS_PACCT = 20,
    SYS_ADMIN = 21,
    SYS_BOOT = 22,
    SYS_NICE = 23,
    SYS_RESOURCE = 24,
    SYS_TIME = 25,
    SYS_TTY_CONFIG = 26,
    MKNOD = 27,
    LEASE = 28,
    AUDIT_WRITE = 29,
    AUDIT_CONTROL = 30,
    SETFCAP = 31,
    MAC_OVERRIDE = 32,
    MAC_ADMIN = 33,
    SYSLOG = 34,
    WAKE_ALARM = 35,
    BLOCK_SUSPEND = 36,
    AUDIT_READ = 37,
    PERFMON = 38,
    BPF = 39,
    CHECKPOINT_RESTORE = 40,
}

impl Capability {
    pub fn number(self) -> u8 {
        self.0
    }

    /// The name without the `CAP_` prefix, e.g. `NET_ADMIN`.
    pub fn short_name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }

    /// Every capability Vessel knows, in number order.
    pub fn all() -> impl Iterator<Item = Capability> {
        (0..NAMES.len() as u8).map(Capability)
    }
}

impl FromStr for Capability {
    type Err = CapsError;

    /// Accepts `CAP_NET_ADMIN`, `net_admin`, `Cap_Net_Admin` and so on.
    fn from_str(name: &str) -> Result<Self, CapsError> {
        let upper = name.trim().to_ascii_uppercase();
        let short = upper.strip_prefix("CAP_").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|n| *n == short)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| CapsError::Unknown(name.to_string()))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.short_name())
    }
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A set of capabilities as the kernel's 64-bit mask.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapabilitySet(u64);

impl CapabilitySet {
    pub const EMPTY: CapabilitySet = CapabilitySet(0);

    pub const fn from_bits(bits: u64) -> Self {
        CapabilitySet(bits)
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Every capability Vessel knows.
    pub fn all() -> Self {
        Capability::all().collect()
    }

    /// The default set of Docker and most OCI runtimes: the 14 capabilities
    /// ordinary programs (package managers, servers dropping root, init
    /// scripts) expect root to have, and none that reach beyond the container.
    pub fn docker_default() -> Self {
        [
            Capability::CHOWN,
            Capability::DAC_OVERRIDE,
            Capability::FSETID,
            Capability::FOWNER,
            Capability::MKNOD,
            Capability::NET_RAW,
            Capability::SETGID,
            Capability::SETUID,
            Capability::SETFCAP,
            Capability::SETPCAP,
            Capability::NET_BIND_SERVICE,
            Capability::SYS_CHROOT,
            Capability::KILL,
            Capability::AUDIT_WRITE,
        ]
        .into_iter()
        .collect()
    }

    /// Parses names as [`Capability::from_str`] does; the error names the
    /// first unknown one.
    pub fn parse<I, S>(names: I) -> Result<Self, CapsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        names.into_iter().map(|n| n.as_ref().parse()).collect()
    }

    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    pub fn insert(&mut self, cap: Capability) {
        self.0 |= 1 << cap.0;
    }

    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !(1 << cap.0);
    }

    pub fn union(self, other: Self) -> Self {
        CapabilitySet(self.0 | other.0)
    }

    pub fn intersection(self, other: Self) -> Self {
        CapabilitySet(self.0 & other.0)
    }

    pub fn difference(self, other: Self) -> Self {
        CapabilitySet(self.0 & !other.0)
    }

    pub fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::all().filter(move |c| self.contains(*c))
    }

    fn from_oci(set: Option<&oci_spec::runtime::Capabilities>) -> Result<Self, CapsError> {
        // oci-spec prints its variants as the kernel names without `CAP_`.
        set.into_iter()
            .flatten()
            .map(|c| c.to_string().parse())
            .collect()
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<T: IntoIterator<Item = Capability>>(iter: T) -> Self {
        let mut set = CapabilitySet::EMPTY;
        for cap in iter {
            set.insert(cap);
        }
        set
    }
}

impl fmt::Debug for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The user and groups an app runs as, for switching in [`CapSets::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub supplementary_groups: Vec<u32>,
    /// Leave the supplementary groups as they are: the user namespace forbids setgroups
    /// (rootless with a single-id mapping, where /proc/self/setgroups says "deny").
    pub keep_groups: bool,
}

/// A failed step of [`CapSets::apply`]; `Copy` so that reporting it from
/// the forked child needs no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {step}: {errno}")]
pub struct ApplyError {
    pub step: &'static str,
    pub errno: Errno,
}

impl From<ApplyError> for std::io::Error {
    fn from(e: ApplyError) -> Self {
        std::io::Error::from_raw_os_error(e.errno as i32)
    }
}

/// The five capability sets of an app process, prepared before fork.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapabilitySet,
    pub effective: CapabilitySet,
    pub permitted: CapabilitySet,
    pub inheritable: CapabilitySet,
    pub ambient: CapabilitySet,
}

impl CapSets {
    /// Keeps `set` in the bounding, effective and permitted sets, with empty
    /// inheritable and ambient sets (Docker's choice): root in the app has
    /// exactly `set`, a non-root user has none after execve.
    pub fn retaining(set: CapabilitySet) -> Self {
        CapSets {
            bounding: set,
            effective: set,
            permitted: set,
            inheritable: CapabilitySet::EMPTY,
            ambient: CapabilitySet::EMPTY,
        }
    }

    /// Also puts the permitted set in the inheritable and ambient sets, so a
    /// non-root user keeps those capabilities across execve.
    pub fn with_ambient(mut self) -> Self {
        self.inheritable = self.permitted;
        self.ambient = self.permitted;
        self
    }

    /// Builds the sets of an OCI `process.capabilities`; a missing set is
    /// empty. Fails on names the kernel does not know and on combinations
    /// the kernel would refuse (see [`CapSets::validate`]).
    pub fn from_oci(spec: &oci_spec::runtime::LinuxCapabilities) -> Result<Self, CapsError> {
        let sets = CapSets {
            bounding: CapabilitySet::from_oci(spec.bounding().as_ref())?,
            effective: CapabilitySet::from_oci(spec.effective().as_ref())?,
            permitted: CapabilitySet::from_oci(spec.permitted().as_ref())?,
            inheritable: CapabilitySet::from_oci(spec.inheritable().as_ref())?,
            ambient: CapabilitySet::from_oci(spec.ambient().as_ref())?,
        };
        sets.validate()?;
        Ok(sets)
    }

    /// Checks the rules capset(2) and PR_CAP_AMBIENT enforce, so that a bad
    /// spec fails before fork with a message naming the capability:
    /// effective within permitted, inheritable within bounding (which is
    /// reduced first), ambient within permitted and inheritable.
    pub fn validate(&self) -> Result<(), CapsError> {
        let checks = [
            (self.effective, "effective", self.permitted, "permitted"),
            (self.inheritable, "inheritable", self.bounding, "bounding"),
            (self.ambient, "ambient", self.permitted, "permitted"),
            (self.ambient, "ambient", self.inheritable, "inheritable"),
        ];
        for (set, set_name, required, required_name) in checks {
            if let Some(cap) = set.difference(required).iter().next() {
                return Err(CapsError::NotInSet {
                    cap,
                    set: set_name,
                    required: required_name,
                });
            }
        }
        Ok(())
    }

    /// Removes from every set the capabilities not in `available` (see
    /// [`available_capabilities`]) and returns what was removed, so the
    /// caller can warn. A spec asking for everything then still runs on a
    /// host whose own bounding set lacks some (CAP_SYS_RESOURCE here).
    pub fn restrict_to(&mut self, available: CapabilitySet) -> CapabilitySet {
        let all = self.bounding.union(self.effective).union(self.permitted);
        let all = all.union(self.inheritable).union(self.ambient);
        for set in [
            &mut self.bounding,
            &mut self.effective,
            &mut self.permitted,
            &mut self.inheritable,
            &mut self.ambient,
        ] {
            *set = set.intersection(available);
        }
        all.difference(available)
    }

    /// Applies the sets to the calling thread, switching to `user` on the
    /// way (see the module docs for the order). Meant for the app's child
    /// just before execve: async-signal-safe, no allocation. The child must
    /// be single-threaded (capabilities and ids are per thread here).
    pub fn apply(&self, user: Option<&Credentials>) -> Result<(), ApplyError> {
        self.drop_bounding()?;
        let keep_caps = user.is_some_and(|u| u.uid != 0);
        if let Some(user) = user {
            if keep_caps {
                prctl(libc::PR_SET_KEEPCAPS, 1, "keep capabilities across setuid")?;
            }
            switch_user(user)?;
        }
        capset(self.effective, self.permitted, self.inheritable)?;
        prctl2(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            "clear the ambient capabilities",
        )?;
        for cap in 0..64u8 {
            if self.ambient.0 & (1 << cap) != 0 {
                prctl2(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    libc::c_ulong::from(cap),
                    "raise an ambient capability",
                )?;
            }
        }
        if keep_caps {
            prctl(libc::PR_SET_KEEPCAPS, 0, "reset keep-capabilities")?;
        }
        Ok(())
    }

    fn drop_bounding(&self) -> Result<(), ApplyError> {
        for cap in 0..64u8 {
            if self.bounding.0 & (1 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl with integer arguments only.
            let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)) };
            if present < 0 {
                // EINVAL: past the kernel's last capability.
                break;
            }
            if present == 1 {
                prctl(
                    libc::PR_CAPBSET_DROP,
                    libc::c_ulong::from(cap),
                    "drop a capability from the bounding set",
                )?;
            }
        }
        Ok(())
    }
}

fn prctl(option: libc::c_int, arg: libc::c_ulong, step: &'static str) -> Result<(), ApplyError> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(ret as libc::c_long, step)
}

fn prctl2(
    option: libc::c_int,
    arg2: libc::c_ulong,
    arg3: libc::c_ulong,
    step: &'static str,
) -> Result<(), ApplyError> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    check(ret as libc::c_long, step)
}

fn check(ret: libc::c_long, step: &'static str) -> Result<(), ApplyError> {
    if ret < 0 {
        Err(ApplyError {
            step,
            errno: Errno::last(),
        })
    } else {
        Ok(())
    }
}

/// Raw syscalls: they change only the calling thread, which is what a
/// single-threaded child wants, and take no libc locks.
fn switch_user(user: &Credentials) -> Result<(), ApplyError> {
    let groups = &user.supplementary_groups;
    if !user.keep_groups {
        // SAFETY: the pointer and length describe a live slice of gid_t (u32).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_setgroups,
                groups.len() as libc::size_t,
                groups.as_ptr(),
            )
        };
        check(ret, "set supplementary groups")?;
    }
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_setresgid, user.gid, user.gid, user.gid) };
    check(ret, "set group id")?;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_setresuid, user.uid, user.uid, user.uid) };
    check(ret, "set user id")
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn capset(
    effective: CapabilitySet,
    permitted: CapabilitySet,
    inheritable: CapabilitySet,
) -> Result<(), ApplyError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Version 3 takes the 64-bit masks as two 32-bit halves.
    let half = |set: CapabilitySet, i: usize| (set.0 >> (32 * i)) as u32;
    let data: [CapData; 2] = std::array::from_fn(|i| CapData {
        effective: half(effective, i),
        permitted: half(permitted, i),
        inheritable: half(inheritable, i),
    });
    // SAFETY: header and data are the repr(C) structs capset(2) expects.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(ret, "set capabilities")
}

/// Capabilities this process can hand to its children: its permitted set
/// limited by its bounding set. Call before fork.
pub fn available_capabilities() -> CapabilitySet {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are the repr(C) structs capget(2) expects.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if ret < 0 {
        return CapabilitySet::EMPTY;
    }
    let permitted = u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32);
    let bounding: CapabilitySet = Capability::all()
        // SAFETY: prctl with integer arguments only.
        .filter(|c| unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(c.0)) } == 1)
        .collect();
    CapabilitySet(permitted).intersection(bounding)
}

/// Sets no_new_privs: from here on execve never grants privileges (setuid
/// bits, file capabilities), and unprivileged seccomp filters are allowed.
/// Async-signal-safe.
pub fn set_no_new_privs() -> Result<(), ApplyError> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "set no_new_privs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kernel_numbers() {
        assert_eq!(NAMES.len(), 41);
        assert_eq!(Capability::CHECKPOINT_RESTORE.number(), 40);
        assert_eq!(Capability::SYS_RESOURCE.short_name(), "SYS_RESOURCE");
        for cap in Capability::all() {
            assert_eq!(cap.to_string().parse::<Capability>().unwrap(), cap);
        }
    }

    #[test]
    fn parsing_is_case_insensitive_with_or_without_prefix() {
        for name in [
            "CAP_NET_ADMIN",
            "NET_ADMIN",
            "net_admin",
            "cap_net_admin",
            " Cap_Net_Admin ",
        ] {
            assert_eq!(
                name.parse::<Capability>().unwrap(),
                Capability::NET_ADMIN,
                "{name}"
            );
        }
        let err = "CAP_NET_ADMINN".parse::<Capability>().unwrap_err();
        assert_eq!(err.to_string(), "unknown capability \"CAP_NET_ADMINN\"");
        let err = CapabilitySet::parse(["chown", "cap_fly", "kill"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability \"cap_fly\"");
        assert!("".parse::<Capability>().is_err());
        assert!("CAP_".parse::<Capability>().is_err());
    }

    #[test]
    fn docker_default_is_the_well_known_fourteen() {
        let set = CapabilitySet::docker_default();
        assert_eq!(set.iter().count(), 14);
        assert_eq!(set.bits(), 0xa80425fb);
        assert!(!set.contains(Capability::SYS_ADMIN));
        assert!(!set.contains(Capability::SYS_RESOURCE));
        assert_eq!(
            format!("{:?}", CapabilitySet::parse(["kill", "chown"]).unwrap()),
            "{CAP_CHOWN, CAP_KILL}"
        );
    }

    #[test]
    fn set_operations() {
        let a = CapabilitySet::parse(["chown", "kill", "mknod"]).unwrap();
        let b = CapabilitySet::parse(["kill"]).unwrap();
        assert!(b.is_subset(a));
        assert!(!a.is_subset(b));
        assert_eq!(a.difference(b).iter().count(), 2);
        assert_eq!(a.intersection(b), b);
        assert_eq!(a.union(b), a);
        let mut c = a;
        c.remove(Capability::KILL);
        assert!(!c.contains(Capability::KILL));
        assert_eq!(CapabilitySet::all().bits(), (1 << 41) - 1);
    }

    #[test]
    fn sets_from_oci_spec() {
        use oci_spec::runtime::{Capability as Oci, LinuxCapabilitiesBuilder};
        let caps = |list: &[Oci]| {
            list.iter()
                .copied()
                .collect::<oci_spec::runtime::Capabilities>()
        };
        let spec = LinuxCapabilitiesBuilder::default()
            .bounding(caps(&[
                Oci::Chown,
                Oci::NetBindService,
                Oci::CheckpointRestore,
            ]))
            .effective(caps(&[Oci::NetBindService]))
            .permitted(caps(&[Oci::NetBindService, Oci::Chown]))
            .inheritable(caps(&[Oci::NetBindService]))
            .ambient(caps(&[Oci::NetBindService]))
            .build()
            .unwrap();
        let sets = CapSets::from_oci(&spec).unwrap();
        assert!(sets.bounding.contains(Capability::CHECKPOINT_RESTORE));
        assert_eq!(
            sets.ambient,
            CapabilitySet::parse(["NET_BIND_SERVICE"]).unwrap()
        );
        assert_eq!(sets.permitted.iter().count(), 2);

        let bad = LinuxCapabilitiesBuilder::default()
            .bounding(caps(&[Oci::Kill]))
            .permitted(caps(&[Oci::Kill]))
            .ambient(caps(&[Oci::Kill]))
            .inheritable(caps(&[]))
            .effective(caps(&[]))
            .build()
            .unwrap();
        let err = CapSets::from_oci(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "capability CAP_KILL is in the ambient set but not in the inheritable set"
        );
    }

    #[test]
    fn building_retained_sets() {
        let set = CapabilitySet::docker_default();
        let root = CapSets::retaining(set);
        assert_eq!(root.bounding, set);
        assert!(root.ambient.is_empty() && root.inheritable.is_empty());
        root.validate().unwrap();
        let user = root.with_ambient();
        assert_eq!(user.ambient, set);
        assert_eq!(user.inheritable, set);
        user.validate().unwrap();

        let mut everything = CapSets::retaining(CapabilitySet::all()).with_ambient();
        let available =
            CapabilitySet::all().difference(CapabilitySet::parse(["sys_resource"]).unwrap());
        let removed = everything.restrict_to(available);
        assert_eq!(removed, CapabilitySet::parse(["CAP_SYS_RESOURCE"]).unwrap());
        assert!(!everything.ambient.contains(Capability::SYS_RESOURCE));
        everything.validate().unwrap();
    }
}
