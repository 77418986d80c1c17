//! The apps' logs: what the supervisor writes (`writer`) and what `vessel logs` reads
//! (`reader`).
//!
//! One file per app, `logs/<app>.log`, in the CRI log format that kubelet, containerd and
//! CRI-O write (so log shippers already parse it): one record per line,
//!
//! ```text
//! 2025-01-02T03:04:05.123456789Z stdout F a whole line
//! 2025-01-02T03:04:05.123460000Z stderr P the start of a line still being written
//! 2025-01-02T03:04:05.123470000Z stderr F ... and its end
//! 2025-01-02T03:04:06.000000000Z vessel F [vessel: a note of our own, e.g. dropped lines]
//! ```
//!
//! The time is when the supervisor read the bytes (UTC, nanoseconds), so the apps' logs
//! interleave by time; the stream keeps stdout and stderr apart; `P` marks a part of a
//! line whose end comes in a later record, `F` the last part. Content is the app's bytes
//! as written, without the newline.
//!
//! Each app's log is capped (`--log-size`, the `logs` config kind, default 100 MiB): the
//! file is rotated to `<app>.log.1` at half the cap, replacing the previous one, so an
//! app's logs never take more than the cap; when lines are dropped that way, a `vessel`
//! note in the log says how many and from when.

pub mod reader;
pub mod writer;

use chrono::{DateTime, SecondsFormat, Utc};

/// The cap on one app's log when neither the flag nor the configuration sets one.
pub const DEFAULT_MAX_BYTES: u64 = 100 << 20;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// Vessel's own notes about the log.
    Vessel,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Vessel => "vessel",
        }
    }

    fn parse(s: &[u8]) -> Option<Stream> {
        match s {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            b"vessel" => Some(Stream::Vessel),
            _ => None,
        }
    }
}

/// One record of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Nanoseconds since the epoch.
    pub time: i64,
    pub stream: Stream,
    /// Part of a line whose end comes in a later record.
    pub partial: bool,
    pub content: &'a [u8],
}

/// The time as records write it: RFC 3339, UTC, nine fraction digits.
pub fn format_time(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Appends one record (with its newline) to `out`.
pub fn format_record(out: &mut Vec<u8>, r: &Record<'_>) {
    format_record_at(out, format_time(r.time).as_bytes(), r);
}

/// `format_record` with the time already formatted (one chunk of output, read at one
/// time, is many records: the time is formatted once).
pub fn format_record_at(out: &mut Vec<u8>, time: &[u8], r: &Record<'_>) {
    out.extend_from_slice(time);
    out.push(b' ');
    out.extend_from_slice(r.stream.name().as_bytes());
    out.extend_from_slice(if r.partial { b" P " } else { b" F " });
    out.extend_from_slice(r.content);
    out.push(b'\n');
}

/// Reads one line of a log file (without its newline); None if it is not a record.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let time = DateTime::parse_from_rfc3339(time)
        .ok()?
        .timestamp_nanos_opt()?;
    let stream = Stream::parse(parts.next()?)?;
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(Record {
        time,
        stream,
        partial,
        content: parts.next().unwrap_or_default(),
    })
}

/// Now, in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut out = Vec::new();
        let r = Record {
            time: 1_700_000_000_123_456_789,
            stream: Stream::Stderr,
            partial: true,
            content: b"a b  c\r",
        };
        format_record(&mut out, &r);
        assert_eq!(
            out,
            b"2023-11-14T22:13:20.123456789Z stderr P a b  c\r\n".to_vec()
        );
        assert_eq!(parse_record(&out[..out.len() - 1]), Some(r));
        let empty = parse_record(b"2023-11-14T22:13:20.000000000Z stdout F ").unwrap();
        assert_eq!(empty.content, b"");
        assert!(parse_record(b"raw output from an old vessel").is_none());
        assert!(parse_record(b"2023-11-14T22:13:20Z other F x").is_none());
    }
}
