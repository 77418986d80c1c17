//! The D-Bus client of the systemd driver: libdbus through the `dbus` crate, blocking and
//! single-threaded (no runtime, no thread: the container's process is cloned from this
//! process). systemd's manager is reached on the system bus, or, where no bus daemon
//! answers for it, on systemd's private socket as systemctl does.

use std::time::{Duration, Instant};

use dbus::arg::{IterAppend, RefArg, Variant};
use dbus::channel::{BusType, Channel};
use dbus::{Message, MessageType};

use super::properties::{Property, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// systemd's private socket (systemctl's fallback; root only).
pub const PRIVATE_SOCKET: &str = "/run/systemd/private";
/// How long a method call and a job may take (runc waits 30 s for a job too).
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("--systemd-cgroup: no systemd answers here: the system bus: {bus}; systemd's private socket {}: {private} (the systemd cgroup driver needs systemd as the host's init; use cgroupfs otherwise)", PRIVATE_SOCKET)]
    NoSystemd { bus: String, private: String },
    #[error("systemd: {method} {unit}: {message}")]
    Call {
        method: &'static str,
        unit: String,
        /// The D-Bus error's name (org.freedesktop.systemd1.NoSuchUnit ...).
        name: String,
        message: String,
    },
    #[error("systemd: job {job} for {unit} ended with {result:?}")]
    Job {
        job: String,
        unit: String,
        result: String,
    },
    #[error("systemd: no answer about job {job} for {unit} within {}s", JOB_TIMEOUT.as_secs())]
    JobTimeout { job: String, unit: String },
}

impl BusError {
    /// The D-Bus error name of a refused call.
    pub fn name(&self) -> Option<&str> {
        match self {
            BusError::Call { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// A connection to systemd's manager.
pub struct Systemd {
    channel: Channel,
    /// Through the bus daemon (signals need a match there), not the private socket.
    on_bus: bool,
}

fn text(e: &dbus::Error) -> String {
    match (e.name(), e.message()) {
        (Some(n), Some(m)) => format!("{m} ({n})"),
        (Some(n), None) => n.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "unknown error".to_string(),
    }
}

impl Systemd {
    /// The system bus if systemd answers there, else its private socket.
    pub fn connect() -> Result<Systemd, BusError> {
        let bus = match Systemd::answering(Channel::get_private(BusType::System), true) {
            Ok(s) => return Ok(s),
            Err(why) => why,
        };
        let private = Channel::open_private(&format!("unix:path={PRIVATE_SOCKET}"));
        match Systemd::answering(private, false) {
            Ok(s) => Ok(s),
            Err(private) => Err(BusError::NoSystemd { bus, private }),
        }
    }

    /// A connection on which systemd answers a ping, or why not.
    fn answering(channel: Result<Channel, dbus::Error>, on_bus: bool) -> Result<Systemd, String> {
        let channel = channel.map_err(|e| text(&e))?;
        let s = Systemd { channel, on_bus };
        s.ping()
            .map_err(|e| format!("connected, but systemd does not answer: {}", text(&e)))?;
        Ok(s)
    }

    /// Asks systemd for a sign of life. On its private socket, systemd 252 leaves a
    /// message that arrives in the same read as the handshake's BEGIN (libdbus sends them
    /// back to back) unread until more comes: so the ping is repeated, each new one
    /// waking it, with longer waits.
    fn ping(&self) -> Result<(), dbus::Error> {
        let mut last = None;
        for wait_ms in [50, 200, 1000, 5000] {
            let msg = Message::new_method_call(DEST, PATH, "org.freedesktop.DBus.Peer", "Ping")
                .map_err(|e| dbus::Error::new_failed(&e))?;
            match self
                .channel
                .send_with_reply_and_block(msg, Duration::from_millis(wait_ms))
            {
                Ok(_) => return Ok(()),
                Err(e) if e.name() == Some("org.freedesktop.DBus.Error.NoReply") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("tried"))
    }

    fn call(
        &self,
        method: &'static str,
        unit: &str,
        build: impl FnOnce(&mut IterAppend<'_>),
    ) -> Result<Message, BusError> {
        let mut msg = Message::new_method_call(DEST, PATH, MANAGER, method).expect("valid names");
        build(&mut IterAppend::new(&mut msg));
        self.channel
            .send_with_reply_and_block(msg, CALL_TIMEOUT)
            .map_err(|e| BusError::Call {
                method,
                unit: unit.to_string(),
                name: e.name().unwrap_or_default().to_string(),
                message: text(&e),
            })
    }

    /// Listens for JobRemoved before a job is queued (the signal may come before the
    /// reply). On the private socket systemd sends it unasked.
    fn listen_for_jobs(&self) -> Result<(), BusError> {
        if !self.on_bus {
            return Ok(());
        }
        let rule = format!(
            "type='signal',sender='{DEST}',path='{PATH}',interface='{MANAGER}',member='JobRemoved'"
        );
        let msg = Message::new_method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
        )
        .expect("valid names")
        .append1(rule);
        self.channel
            .send_with_reply_and_block(msg, CALL_TIMEOUT)
            .map(drop)
            .map_err(|e| BusError::Call {
                method: "AddMatch",
                unit: String::new(),
                name: e.name().unwrap_or_default().to_string(),
                message: text(&e),
            })
    }

    /// Waits for the JobRemoved signal of `job`; Ok when its result is "done".
    fn wait_job(&self, job: &str, unit: &str) -> Result<(), BusError> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BusError::JobTimeout {
                    job: job.to_string(),
                    unit: unit.to_string(),
                });
            }
            let msg = self
                .channel
                .blocking_pop_message(left.min(Duration::from_millis(500)))
                .map_err(|e| BusError::Call {
                    method: "JobRemoved",
                    unit: unit.to_string(),
                    name: e.name().unwrap_or_default().to_string(),
                    message: text(&e),
                })?;
            let Some(msg) = msg else { continue };
            if msg.msg_type() != MessageType::Signal
                || msg.member().as_deref() != Some("JobRemoved")
            {
                continue;
            }
            let Ok((_, path, _, result)) = msg.read4::<u32, dbus::Path<'_>, &str, &str>() else {
                continue;
            };
            if &*path != job {
                continue;
            }
            return if result == "done" {
                Ok(())
            } else {
                Err(BusError::Job {
                    job: job.to_string(),
                    unit: unit.to_string(),
                    result: result.to_string(),
                })
            };
        }
    }

    /// StartTransientUnit in mode "fail", then waits for its job.
    pub fn start_transient_unit(&self, unit: &str, props: &[Property]) -> Result<(), BusError> {
        self.listen_for_jobs()?;
        let reply = self.call("StartTransientUnit", unit, |a| {
            a.append(unit);
            a.append("fail");
            a.append(variants(props));
            a.append(Vec::<(String, Vec<(String, Variant<Box<dyn RefArg>>)>)>::new());
        })?;
        let job = job_of(&reply, "StartTransientUnit", unit)?;
        self.wait_job(&job, unit)
    }

    /// SetUnitProperties at run time (not kept across a reboot).
    pub fn set_unit_properties(&self, unit: &str, props: &[Property]) -> Result<(), BusError> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", unit, |a| {
            a.append(unit);
            a.append(true);
            a.append(variants(props));
        })
        .map(drop)
    }

    /// StopUnit, waiting for its job; a unit that is gone already is fine. A scope that
    /// ended as failed is reset so its name can be used again.
    pub fn stop_unit(&self, unit: &str) -> Result<(), BusError> {
        self.listen_for_jobs()?;
        let stopped = self
            .call("StopUnit", unit, |a| {
                a.append(unit);
                a.append("replace");
            })
            .and_then(|reply| job_of(&reply, "StopUnit", unit))
            .and_then(|job| self.wait_job(&job, unit));
        let _ = self.reset_failed_unit(unit);
        match stopped {
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            other => other,
        }
    }

    pub fn reset_failed_unit(&self, unit: &str) -> Result<(), BusError> {
        self.call("ResetFailedUnit", unit, |a| a.append(unit))
            .map(drop)
    }
}

fn job_of(reply: &Message, method: &'static str, unit: &str) -> Result<String, BusError> {
    reply
        .read1::<dbus::Path<'_>>()
        .map(|p| p.to_string())
        .map_err(|e| BusError::Call {
            method,
            unit: unit.to_string(),
            name: String::new(),
            message: format!("unexpected reply: {e}"),
        })
}

/// Properties as D-Bus `a(sv)`.
fn variants(props: &[Property]) -> Vec<(&'static str, Variant<Box<dyn RefArg>>)> {
    props
        .iter()
        .map(|(name, value)| {
            let boxed: Box<dyn RefArg> = match value {
                Value::Bool(b) => Box::new(*b),
                Value::U64(n) => Box::new(*n),
                Value::Str(s) => Box::new(s.clone()),
                Value::Strs(v) => Box::new(v.clone()),
                Value::U32s(v) => Box::new(v.clone()),
                Value::Bytes(v) => Box::new(v.clone()),
                Value::Pairs(v) => Box::new(v.clone()),
            };
            (*name, Variant(boxed))
        })
        .collect()
}

/// Debian's static libdbus (`libdbus-1.a`, linked because every Vessel binary is static)
/// was built with systemd's socket activation for the bus daemon: its server side calls
/// these two libsystemd functions, which a client never reaches. They answer "no
/// sockets passed", so the link needs no libsystemd (which Debian ships only shared).
mod no_socket_activation {
    use std::os::raw::c_int;

    #[no_mangle]
    extern "C" fn sd_listen_fds(_unset_environment: c_int) -> c_int {
        0
    }

    #[no_mangle]
    extern "C" fn sd_is_socket(
        _fd: c_int,
        _family: c_int,
        _type: c_int,
        _listening: c_int,
    ) -> c_int {
        0
    }
}
