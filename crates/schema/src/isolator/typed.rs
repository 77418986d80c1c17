//! The typed view of the isolators Vessel implements.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::names;
use crate::error::SchemaError;
use crate::identifier::AcIdentifier;
use crate::json::{FromJson, Obj, Path};
use crate::quantity::Quantity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedIsolator {
    /// `resource/memory`, in bytes.
    Memory(ResourceLimits),
    /// `resource/cpu`, in cores (millicores via [`Quantity::millis`]).
    Cpu(ResourceLimits),
    CapabilitiesRetain(CapabilitySet),
    CapabilitiesRemove(CapabilitySet),
    SeccompRetain(SeccompSet),
    SeccompRemove(SeccompSet),
    NoNewPrivileges(bool),
    /// -1000..=1000.
    OomScoreAdj(i32),
    /// 2..=262144, cgroup v1 `cpu.shares` units.
    CpuShares(u32),
    SelinuxContext(SelinuxContext),
    /// `os/unix/sysctl`: key to value.
    Sysctl(BTreeMap<String, String>),
    /// Any other isolator, kept as it came.
    Unknown {
        name: AcIdentifier,
        value: Value,
    },
}

/// A resource isolator's request and limit. At least one is set; the
/// request defaults to the limit, as the spec says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLimits {
    pub request: Option<Quantity>,
    pub limit: Option<Quantity>,
}

impl ResourceLimits {
    pub fn limit(limit: Quantity) -> Self {
        ResourceLimits {
            request: None,
            limit: Some(limit),
        }
    }

    pub fn effective_request(&self) -> Option<&Quantity> {
        self.request.as_ref().or(self.limit.as_ref())
    }

    /// The limit in bytes (memory); whole by validation.
    pub fn limit_bytes(&self) -> Option<u64> {
        self.limit
            .as_ref()
            .and_then(|q| u64::try_from(q.units()).ok())
    }

    /// The limit in millicores (cpu).
    pub fn limit_millis(&self) -> Option<u64> {
        self.limit
            .as_ref()
            .and_then(|q| u64::try_from(q.millis()).ok())
    }
}

/// Capability names as the kernel spells them, `CAP_NET_ADMIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitySet {
    pub set: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompSet {
    /// Syscall names, or `@scope/wildcard` values such as `@appc.io/all`.
    pub set: Vec<String>,
    /// Errno name (`EPERM`) returned by blocked calls; `None` kills with SIGSYS.
    pub errno: Option<String>,
}

/// Wildcard meaning every syscall (retain set) ...
pub const SECCOMP_ALL: &str = "@appc.io/all";
/// ... and no syscall (remove set).
pub const SECCOMP_EMPTY: &str = "@appc.io/empty";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelinuxContext {
    pub user: String,
    pub role: String,
    pub r#type: String,
    pub level: String,
}

impl SelinuxContext {
    /// `user:role:type:level`, the form the kernel takes.
    pub fn label(&self) -> String {
        format!("{}:{}:{}:{}", self.user, self.role, self.r#type, self.level)
    }
}

fn bad(what: &'static str, value: impl Into<String>, why: impl Into<String>) -> SchemaError {
    SchemaError::invalid_because(what, value, why)
}

fn is_capability(s: &str) -> bool {
    s.strip_prefix("CAP_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn is_syscall_or_wildcard(s: &str) -> bool {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match s.strip_prefix('@') {
        // Wildcards are scoped: `@scope/name`.
        Some(w) => w.split_once('/').is_some_and(|(scope, name)| {
            !scope.is_empty()
                && !name.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        }),
        None => name_ok(s),
    }
}

fn is_errno(s: &str) -> bool {
    s.len() > 1
        && s.starts_with('E')
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn resource(value: &Value, whole_units: bool) -> Result<ResourceLimits, SchemaError> {
    let at = Path::root();
    let o = Obj::new(value, &at)?;
    let field = |key: &'static str| -> Result<Option<Quantity>, SchemaError> {
        let q: Option<Quantity> = o.optional(key).map_err(|e| with_key(e, key))?;
        if let Some(q) = &q {
            if q.is_zero() {
                return Err(bad(
                    "quantity",
                    q.as_str(),
                    format!("{key} must be greater than zero"),
                ));
            }
            if whole_units && !q.is_whole() {
                return Err(bad(
                    "quantity",
                    q.as_str(),
                    format!("{key} must be a whole number of bytes; \"m\" means milli, \"M\" mega"),
                ));
            }
            if u64::try_from(q.millis()).is_err() {
                return Err(bad("quantity", q.as_str(), format!("{key} is too large")));
            }
        }
        Ok(q)
    };
    let limits = ResourceLimits {
        request: field("request")?,
        limit: field("limit")?,
    };
    match (&limits.request, &limits.limit) {
        (None, None) => Err(SchemaError::Rule("needs a limit or a request".into())),
        (Some(r), Some(l)) if r > l => Err(SchemaError::Rule(format!(
            "request {r} is greater than limit {l}"
        ))),
        _ => Ok(limits),
    }
}

/// Errors inside an isolator value name the key, not a manifest path.
fn with_key(e: SchemaError, key: &str) -> SchemaError {
    match e {
        SchemaError::Field { problem, .. } => SchemaError::Rule(format!("{key}: {problem}")),
        other => SchemaError::Rule(format!("{key}: {other}")),
    }
}

fn string_set(
    value: &Value,
    what: &'static str,
    valid: fn(&str) -> bool,
) -> Result<Vec<String>, SchemaError> {
    let at = Path::root();
    let o = Obj::new(value, &at)?;
    let set: Vec<String> = o.required("set").map_err(|e| with_key(e, "set"))?;
    if set.is_empty() {
        return Err(SchemaError::Rule("set must not be empty".into()));
    }
    if let Some(item) = set.iter().find(|s| !valid(s)) {
        return Err(SchemaError::invalid(what, item.as_str()));
    }
    Ok(set)
}

fn capability_set(value: &Value) -> Result<CapabilitySet, SchemaError> {
    Ok(CapabilitySet {
        set: string_set(value, "capability", is_capability)?,
    })
}

fn seccomp_set(value: &Value) -> Result<SeccompSet, SchemaError> {
    let set = string_set(value, "syscall name", is_syscall_or_wildcard)?;
    let at = Path::root();
    let o = Obj::new(value, &at)?;
    let errno: Option<String> = o.optional("errno").map_err(|e| with_key(e, "errno"))?;
    let errno = errno.filter(|e| !e.is_empty());
    if let Some(e) = &errno {
        if !is_errno(e) {
            return Err(bad(
                "errno",
                e.as_str(),
                "must be an upper-case name such as EPERM",
            ));
        }
    }
    Ok(SeccompSet { set, errno })
}

fn selinux(value: &Value) -> Result<SelinuxContext, SchemaError> {
    let at = Path::root();
    let o = Obj::new(value, &at)?;
    let part = |key: &'static str, colon_ok: bool| -> Result<String, SchemaError> {
        let s: String = o.required(key).map_err(|e| with_key(e, key))?;
        if s.is_empty() || (!colon_ok && s.contains(':')) {
            return Err(bad("SELinux context part", s, format!("bad {key}")));
        }
        Ok(s)
    };
    Ok(SelinuxContext {
        user: part("user", false)?,
        role: part("role", false)?,
        r#type: part("type", false)?,
        // MLS levels contain colons: `s0:c1,c2`.
        level: part("level", true)?,
    })
}

fn ranged_int(value: &Value, min: i64, max: i64) -> Result<i64, SchemaError> {
    let n = i64::from_json(value, &Path::root())?;
    if !(min..=max).contains(&n) {
        return Err(bad(
            "value",
            n.to_string(),
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(n)
}

fn sysctl(value: &Value) -> Result<BTreeMap<String, String>, SchemaError> {
    let map = BTreeMap::<String, String>::from_json(value, &Path::root())
        .map_err(|e| SchemaError::Rule(e.to_string()))?;
    if map.keys().any(|k| k.is_empty()) {
        return Err(SchemaError::Rule("sysctl names must not be empty".into()));
    }
    Ok(map)
}

impl TypedIsolator {
    /// Parses an isolator value by name; unknown names are kept as they are.
    pub fn parse(name: &AcIdentifier, value: &Value) -> Result<Self, SchemaError> {
        let typed = match name.as_str() {
            names::RESOURCE_MEMORY => resource(value, true).map(TypedIsolator::Memory),
            names::RESOURCE_CPU => resource(value, false).map(TypedIsolator::Cpu),
            names::CAPABILITIES_RETAIN_SET => {
                capability_set(value).map(TypedIsolator::CapabilitiesRetain)
            }
            names::CAPABILITIES_REMOVE_SET => {
                capability_set(value).map(TypedIsolator::CapabilitiesRemove)
            }
            names::SECCOMP_RETAIN_SET => seccomp_set(value).map(TypedIsolator::SeccompRetain),
            names::SECCOMP_REMOVE_SET => seccomp_set(value).map(TypedIsolator::SeccompRemove),
            names::NO_NEW_PRIVILEGES => {
                bool::from_json(value, &Path::root()).map(TypedIsolator::NoNewPrivileges)
            }
            names::OOM_SCORE_ADJ => {
                ranged_int(value, -1000, 1000).map(|n| TypedIsolator::OomScoreAdj(n as i32))
            }
            names::CPU_SHARES => {
                ranged_int(value, 2, 262_144).map(|n| TypedIsolator::CpuShares(n as u32))
            }
            names::SELINUX_CONTEXT => selinux(value).map(TypedIsolator::SelinuxContext),
            names::SYSCTL => sysctl(value).map(TypedIsolator::Sysctl),
            _ => Ok(TypedIsolator::Unknown {
                name: name.clone(),
                value: value.clone(),
            }),
        };
        typed.map_err(|problem| SchemaError::Isolator {
            name: name.to_string(),
            problem: Box::new(problem),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            TypedIsolator::Memory(_) => names::RESOURCE_MEMORY,
            TypedIsolator::Cpu(_) => names::RESOURCE_CPU,
            TypedIsolator::CapabilitiesRetain(_) => names::CAPABILITIES_RETAIN_SET,
            TypedIsolator::CapabilitiesRemove(_) => names::CAPABILITIES_REMOVE_SET,
            TypedIsolator::SeccompRetain(_) => names::SECCOMP_RETAIN_SET,
            TypedIsolator::SeccompRemove(_) => names::SECCOMP_REMOVE_SET,
            TypedIsolator::NoNewPrivileges(_) => names::NO_NEW_PRIVILEGES,
            TypedIsolator::OomScoreAdj(_) => names::OOM_SCORE_ADJ,
            TypedIsolator::CpuShares(_) => names::CPU_SHARES,
            TypedIsolator::SelinuxContext(_) => names::SELINUX_CONTEXT,
            TypedIsolator::Sysctl(_) => names::SYSCTL,
            TypedIsolator::Unknown { name, .. } => name.as_str(),
        }
    }

    /// The JSON `value` of this isolator, in the spec's shape.
    pub fn to_value(&self) -> Value {
        fn resource(r: &ResourceLimits) -> Value {
            let mut m = Map::new();
            if let Some(q) = &r.request {
                m.insert("request".into(), json!(q.as_str()));
            }
            if let Some(q) = &r.limit {
                m.insert("limit".into(), json!(q.as_str()));
            }
            Value::Object(m)
        }
        fn seccomp(s: &SeccompSet) -> Value {
            let mut m = Map::new();
            if let Some(e) = &s.errno {
                m.insert("errno".into(), json!(e));
            }
            m.insert("set".into(), json!(s.set));
            Value::Object(m)
        }
        match self {
            TypedIsolator::Memory(r) | TypedIsolator::Cpu(r) => resource(r),
            TypedIsolator::CapabilitiesRetain(c) | TypedIsolator::CapabilitiesRemove(c) => {
                json!({ "set": c.set })
            }
            TypedIsolator::SeccompRetain(s) | TypedIsolator::SeccompRemove(s) => seccomp(s),
            TypedIsolator::NoNewPrivileges(b) => json!(b),
            TypedIsolator::OomScoreAdj(n) => json!(n),
            TypedIsolator::CpuShares(n) => json!(n),
            TypedIsolator::SelinuxContext(c) => json!({
                "user": c.user, "role": c.role, "type": c.r#type, "level": c.level,
            }),
            TypedIsolator::Sysctl(m) => json!(m),
            TypedIsolator::Unknown { value, .. } => value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, value: Value) -> Result<TypedIsolator, SchemaError> {
        TypedIsolator::parse(&name.parse().unwrap(), &value)
    }

    #[test]
    fn memory() {
        let t = parse(
            names::RESOURCE_MEMORY,
            json!({"request": "1G", "limit": "2G"}),
        )
        .unwrap();
        let TypedIsolator::Memory(r) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(r.limit_bytes(), Some(2_000_000_000));
        assert_eq!(r.effective_request().unwrap().units(), 1_000_000_000);
        let t = parse(names::RESOURCE_MEMORY, json!({"limit": "128Mi"})).unwrap();
        let TypedIsolator::Memory(r) = &t else {
            panic!()
        };
        assert_eq!(r.effective_request(), r.limit.as_ref());

        let e = parse(names::RESOURCE_MEMORY, json!({"limit": "12x"})).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"isolator "resource/memory": limit: "12x" is not a valid quantity (unknown suffix "x")"#
        );
        let e = parse(names::RESOURCE_MEMORY, json!({"limit": "128m"})).unwrap_err();
        assert!(e.to_string().contains("whole number of bytes"), "{e}");
        let e = parse(
            names::RESOURCE_MEMORY,
            json!({"request": "2G", "limit": "1G"}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"isolator "resource/memory": request 2G is greater than limit 1G"#
        );
        assert!(parse(names::RESOURCE_MEMORY, json!({})).is_err());
        assert!(parse(names::RESOURCE_MEMORY, json!({"limit": "0"})).is_err());
        assert!(parse(names::RESOURCE_MEMORY, json!("1G")).is_err());
        assert!(parse(names::RESOURCE_MEMORY, json!({"limit": "100Ei"})).is_err());
    }

    #[test]
    fn cpu() {
        let t = parse(
            names::RESOURCE_CPU,
            json!({"request": "250m", "limit": "500m"}),
        )
        .unwrap();
        let TypedIsolator::Cpu(r) = &t else { panic!() };
        assert_eq!(r.limit_millis(), Some(500));
        let t = parse(names::RESOURCE_CPU, json!({"limit": "2"})).unwrap();
        let TypedIsolator::Cpu(r) = &t else { panic!() };
        assert_eq!(r.limit_millis(), Some(2000));
        assert_eq!(t.to_value(), json!({"limit": "2"}));
    }

    #[test]
    fn capabilities() {
        let t = parse(
            names::CAPABILITIES_RETAIN_SET,
            json!({"set": ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]}),
        )
        .unwrap();
        assert_eq!(
            t,
            TypedIsolator::CapabilitiesRetain(CapabilitySet {
                set: vec!["CAP_NET_ADMIN".into(), "CAP_NET_BIND_SERVICE".into()]
            })
        );
        assert_eq!(
            t.to_value(),
            json!({"set": ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]})
        );
        assert!(parse(
            names::CAPABILITIES_REMOVE_SET,
            json!({"set": ["CAP_SYS_CHROOT", "CAP_MKNOD"]})
        )
        .is_ok());
        for bad in [
            json!({"set": []}),
            json!({"set": ["NET_ADMIN"]}),
            json!({"set": ["cap_net_admin"]}),
            json!({"set": ["CAP_"]}),
            json!({}),
            json!({"set": "CAP_X"}),
        ] {
            assert!(
                parse(names::CAPABILITIES_RETAIN_SET, bad.clone()).is_err(),
                "{bad}"
            );
        }
        let e = parse(
            names::CAPABILITIES_RETAIN_SET,
            json!({"set": ["NET_ADMIN"]}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"isolator "os/linux/capabilities-retain-set": "NET_ADMIN" is not a valid capability"#
        );
    }

    #[test]
    fn seccomp() {
        let t = parse(
            names::SECCOMP_REMOVE_SET,
            json!({"errno": "ENOTSUP", "set": ["clock_adjtime", "clock_settime", "reboot"]}),
        )
        .unwrap();
        let TypedIsolator::SeccompRemove(s) = &t else {
            panic!()
        };
        assert_eq!(s.errno.as_deref(), Some("ENOTSUP"));
        assert_eq!(
            t.to_value(),
            json!({"errno": "ENOTSUP", "set": ["clock_adjtime", "clock_settime", "reboot"]})
        );
        let t = parse(
            names::SECCOMP_RETAIN_SET,
            json!({"errno": "", "set": ["accept", "_llseek", SECCOMP_ALL, "@vessel/default-set"]}),
        )
        .unwrap();
        let TypedIsolator::SeccompRetain(s) = &t else {
            panic!()
        };
        assert_eq!(s.errno, None);
        for bad in [
            json!({"set": []}),
            json!({"set": ["Read"]}),
            json!({"set": ["read"], "errno": "eperm"}),
            json!({"set": ["@all"]}),
            json!({"set": ["read"], "errno": "E"}),
        ] {
            assert!(
                parse(names::SECCOMP_RETAIN_SET, bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(
            parse(names::NO_NEW_PRIVILEGES, json!(true)).unwrap(),
            TypedIsolator::NoNewPrivileges(true)
        );
        assert!(parse(names::NO_NEW_PRIVILEGES, json!("true")).is_err());
        assert_eq!(
            parse(names::OOM_SCORE_ADJ, json!(-1000)).unwrap(),
            TypedIsolator::OomScoreAdj(-1000)
        );
        assert!(parse(names::OOM_SCORE_ADJ, json!(1001)).is_err());
        assert!(parse(names::OOM_SCORE_ADJ, json!("5")).is_err());
        assert_eq!(
            parse(names::CPU_SHARES, json!(1024)).unwrap(),
            TypedIsolator::CpuShares(1024)
        );
        let e = parse(names::CPU_SHARES, json!(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"isolator "os/linux/cpu-shares": "1" is not a valid value (must be between 2 and 262144)"#
        );
        assert_eq!(TypedIsolator::CpuShares(1024).to_value(), json!(1024));
    }

    #[test]
    fn selinux_and_sysctl() {
        let v =
            json!({"user": "system_u", "role": "system_r", "type": "dhcpc_t", "level": "s0:c1,c2"});
        let t = parse(names::SELINUX_CONTEXT, v.clone()).unwrap();
        let TypedIsolator::SelinuxContext(c) = &t else {
            panic!()
        };
        assert_eq!(c.label(), "system_u:system_r:dhcpc_t:s0:c1,c2");
        assert_eq!(t.to_value(), v);
        assert!(parse(
            names::SELINUX_CONTEXT,
            json!({"user": "a", "role": "b", "type": "c"})
        )
        .is_err());
        assert!(parse(
            names::SELINUX_CONTEXT,
            json!({"user": "a:x", "role": "b", "type": "c", "level": "s0"})
        )
        .is_err());

        let t = parse(names::SYSCTL, json!({"net.ipv4.tcp_fin_timeout": "6"})).unwrap();
        assert_eq!(t.to_value(), json!({"net.ipv4.tcp_fin_timeout": "6"}));
        assert!(parse(names::SYSCTL, json!({"a": 1})).is_err());
    }

    #[test]
    fn unknown_is_preserved() {
        let v = json!({"default": true, "limit": "1000"});
        let t = parse("resource/block-iops", v.clone()).unwrap();
        assert_eq!(t.name(), "resource/block-iops");
        assert_eq!(t.to_value(), v);
    }
}
