//! Device access rules: the container default whitelist and its v1 form.
//! (The v2 form, an eBPF program, is built in `bpf.rs`.)

use std::fmt;

use super::CgroupError;

/// Which device nodes a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// A set of access types, using the kernel's BPF bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAccess(u8);

impl DeviceAccess {
    pub const MKNOD: DeviceAccess = DeviceAccess(1);
    pub const READ: DeviceAccess = DeviceAccess(2);
    pub const WRITE: DeviceAccess = DeviceAccess(4);
    pub const ALL: DeviceAccess = DeviceAccess(7);

    /// Parses the `r`, `w`, `m` letters used by v1 and the OCI spec; an empty
    /// string means all three, as in the OCI spec.
    pub fn parse(letters: &str) -> Result<Self, CgroupError> {
        if letters.is_empty() {
            return Ok(Self::ALL);
        }
        let mut bits = 0;
        for letter in letters.chars() {
            bits |= match letter {
                'r' => Self::READ.0,
                'w' => Self::WRITE.0,
                'm' => Self::MKNOD.0,
                _ => {
                    return Err(CgroupError::InvalidLimit(format!(
                        "device access {letters:?} (expected letters from \"rwm\")"
                    )))
                }
            };
        }
        Ok(DeviceAccess(bits))
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn contains(self, other: DeviceAccess) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for DeviceAccess {
    type Output = DeviceAccess;
    fn bitor(self, rhs: Self) -> Self {
        DeviceAccess(self.0 | rhs.0)
    }
}

impl fmt::Display for DeviceAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One allow or deny rule. `None` for a number means any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: DeviceAccess,
}

impl DeviceRule {
    pub const fn char_dev(major: u32, minor: Option<u32>, access: DeviceAccess) -> Self {
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            access,
        }
    }

    /// Denies every access to every device.
    pub const DENY_ALL: DeviceRule = DeviceRule {
        allow: false,
        kind: DeviceKind::All,
        major: None,
        minor: None,
        access: DeviceAccess::ALL,
    };

    /// The standard container whitelist: deny everything, then allow read,
    /// write and mknod of null, zero, full, random, urandom, tty, ptmx and
    /// the pty slaves. mknod is allowed only for these nodes (so the executor
    /// may create them in the container's /dev); creating any other char or
    /// block device is denied, which the leading deny-all takes care of.
    pub fn container_defaults() -> Vec<DeviceRule> {
        let rwm = DeviceAccess::ALL;
        vec![
            Self::DENY_ALL,
            Self::char_dev(1, Some(3), rwm), // /dev/null
            Self::char_dev(1, Some(5), rwm), // /dev/zero
            Self::char_dev(1, Some(7), rwm), // /dev/full
            Self::char_dev(1, Some(8), rwm), // /dev/random
            Self::char_dev(1, Some(9), rwm), // /dev/urandom
            Self::char_dev(5, Some(0), rwm), // /dev/tty
            Self::char_dev(5, Some(2), rwm), // /dev/ptmx
            Self::char_dev(136, None, rwm),  // /dev/pts/*
        ]
    }

    /// The rule in v1 `devices.allow`/`devices.deny` syntax, e.g. `c 1:3 rwm`.
    pub fn v1_entry(&self) -> String {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        match self.kind {
            // v1 only understands "all devices" with any numbers and access.
            DeviceKind::All => "a".to_string(),
            DeviceKind::Char | DeviceKind::Block => format!(
                "{} {}:{} {}",
                if self.kind == DeviceKind::Char {
                    'c'
                } else {
                    'b'
                },
                number(self.major),
                number(self.minor),
                self.access
            ),
        }
    }

    /// Converts an OCI `linux.resources.devices` entry.
    pub fn from_oci(rule: &oci_spec::runtime::LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        use oci_spec::runtime::LinuxDeviceType;
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => {
                return Err(CgroupError::InvalidLimit(
                    "device rule for a fifo (type p)".to_string(),
                ))
            }
        };
        let number = |n: Option<i64>| -> Result<Option<u32>, CgroupError> {
            match n {
                None | Some(-1) => Ok(None),
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|&n| i32::try_from(n).is_ok())
                    .map(Some)
                    .ok_or_else(|| CgroupError::InvalidLimit(format!("device number {n}"))),
            }
        };
        Ok(DeviceRule {
            allow: rule.allow(),
            kind,
            major: number(rule.major())?,
            minor: number(rule.minor())?,
            access: DeviceAccess::parse(rule.access().as_deref().unwrap_or(""))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_entries_of_the_defaults() {
        let entries: Vec<_> = DeviceRule::container_defaults()
            .iter()
            .map(DeviceRule::v1_entry)
            .collect();
        assert_eq!(
            entries,
            [
                "a",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm",
                "c 136:* rwm"
            ]
        );
        assert!(!DeviceRule::container_defaults()[0].allow);
    }

    #[test]
    fn access_letters() {
        assert_eq!(DeviceAccess::parse("rw").unwrap().to_string(), "rw");
        assert_eq!(DeviceAccess::parse("mr").unwrap().to_string(), "rm");
        assert_eq!(DeviceAccess::parse("").unwrap(), DeviceAccess::ALL);
        assert!(DeviceAccess::parse("rx").is_err());
    }

    #[test]
    fn from_oci_rule() {
        use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};
        let rule = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .major(8i64)
            .access("r")
            .build()
            .unwrap();
        let rule = DeviceRule::from_oci(&rule).unwrap();
        assert_eq!(rule.v1_entry(), "b 8:* r");
    }
}
