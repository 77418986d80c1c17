//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: the container's cgroup is a
//! transient unit systemd makes (a scope holding the container's process, or a slice),
//! named by `linux.cgroupsPath` in the form `slice:prefix:name` (`path`). Its resources
//! go to systemd as unit properties where systemd has them (`properties`), so systemd
//! keeps them when it applies the unit's settings again, and then through the executor's
//! cgroupfs writers into the unit's cgroup in every hierarchy (what systemd lacks, and the
//! hierarchies it does not manage: freezer, cpuset on v1). Spoken over D-Bus (`bus`).
//!
//! Order at create: the container's process is cloned and waits for its plan; systemd
//! starts the unit with that pid (and moves it); the cgroupfs part makes the directories
//! systemd did not and writes the files; the process then joins the unit's cgroup in every
//! hierarchy through descriptors, as without systemd, before its cgroup namespace exists.

pub mod bus;
pub mod path;
pub mod properties;

use exec::cgroups::{Layout, Limits};

pub use bus::{BusError, Systemd};
pub use path::UnitPath;

/// A container's unit, with the connection that makes and changes it.
pub struct Unit {
    pub bus: Systemd,
    pub path: UnitPath,
    pub layout: Layout,
}

impl Unit {
    /// Starts the unit holding `pid` (a scope; a slice takes no process), its resources
    /// as properties, and waits until systemd's job is done.
    pub fn start(&self, pid: i32, id: &str, limits: &Limits) -> Result<(), BusError> {
        let description = format!("vessel-runtime container {id}");
        let mut props = properties::unit(&self.path, pid, &description, self.layout);
        props.extend(properties::resources(limits, self.layout));
        match self.bus.start_transient_unit(&self.path.unit, &props) {
            // A unit of that name left failed by an earlier container: reset, once.
            Err(e) if e.name() == Some("org.freedesktop.systemd1.UnitExists") => {
                let _ = self.bus.reset_failed_unit(&self.path.unit);
                self.bus.start_transient_unit(&self.path.unit, &props)
            }
            other => other,
        }
    }
}

/// Sets the resources of `limits` systemd has properties for on the unit (`update`).
pub fn set_resources(
    bus: &Systemd,
    unit: &str,
    limits: &Limits,
    layout: Layout,
) -> Result<(), BusError> {
    bus.set_unit_properties(unit, &properties::resources(limits, layout))
}
