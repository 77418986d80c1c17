//! Log lines in runc's formats (logrus's), to `--log FILE` or stderr.
//!
//! - `--log-format=text`: `time="2026-12-07T00:42:58Z" level=error msg="container does not exist"`
//! - `--log-format=json`: `{"level":"error","msg":"container does not exist","time":"2026-12-07T00:42:58Z"}`
//!
//! containerd's shim runs the runtime with `--log <bundle>/log.json --log-format json` and,
//! when a command fails, reports the `msg` of the last `error` line it finds there.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Logger {
    /// None: stderr.
    pub file: Option<PathBuf>,
    pub format: Format,
    pub debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets where log lines go, once, before any command runs.
pub fn init(logger: Logger) {
    let _ = LOGGER.set(logger);
}

/// Whether errors already reach stderr through the log (no --log given): runc then
/// prints nothing more.
pub fn to_stderr() -> bool {
    LOGGER.get().is_none_or(|l| l.file.is_none())
}

pub fn error(msg: &str) {
    write(Level::Error, msg);
}

pub fn warn(msg: &str) {
    write(Level::Warn, msg);
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        write(Level::Debug, msg);
    }
}

fn write(level: Level, msg: &str) {
    let default = Logger {
        file: None,
        format: Format::Text,
        debug: false,
    };
    let logger = LOGGER.get().unwrap_or(&default);
    let now = chrono::Utc::now();
    let line = format_line(logger.format, level, msg, &now);
    match &logger.file {
        // Appended whole in one write: several processes may log to one file.
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            if let Ok(mut f) = f {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// One line, newline included.
pub fn format_line(
    format: Format,
    level: Level,
    msg: &str,
    time: &chrono::DateTime<chrono::Utc>,
) -> String {
    let time = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match format {
        Format::Json => {
            // Keys in logrus's (sorted) order.
            let esc = |s: &str| serde_json::to_string(s).expect("a string serialises");
            format!(
                "{{\"level\":{},\"msg\":{},\"time\":{}}}\n",
                esc(level.as_str()),
                esc(msg),
                esc(&time)
            )
        }
        Format::Text => format!(
            "time={} level={} msg={}\n",
            text_value(&time),
            text_value(level.as_str()),
            text_value(msg)
        ),
    }
}

/// logrus's text formatter quotes (as Go's %q) any value with a character outside
/// letters, digits and `-._/@^+`.
fn text_value(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-07T00:42:58Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn as_runc_writes_them() {
        assert_eq!(
            format_line(Format::Json, Level::Error, "container does not exist", &at()),
            "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"2026-12-07T00:42:58Z\"}\n"
        );
        assert_eq!(
            format_line(
                Format::Text,
                Level::Error,
                "container does not exist",
                &at()
            ),
            "time=\"2026-12-07T00:42:58Z\" level=error msg=\"container does not exist\"\n"
        );
        assert_eq!(
            format_line(Format::Text, Level::Warn, "plain", &at()),
            "time=\"2026-12-07T00:42:58Z\" level=warning msg=plain\n"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(text_value("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(text_value("x\u{1}"), "\"x\\x01\"");
        let json = format_line(Format::Json, Level::Error, "a\"b\n", &at());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["msg"], "a\"b\n");
    }
}
