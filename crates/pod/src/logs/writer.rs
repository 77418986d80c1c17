//! The supervisor's side: an app's output turned into records, appended to its log,
//! rotated at half the cap.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{format_record, format_record_at, now_nanos, Record, Stream};

/// One app's log, made on its first output (a silent app leaves no file).
pub struct AppLog {
    app: String,
    path: PathBuf,
    /// The cap on both files together; 0: none.
    max_bytes: u64,
    file: Option<File>,
    /// Opening failed: the output is not logged (it still reaches a foreground terminal).
    failed: bool,
    /// Bytes in the current file.
    size: u64,
    /// Lines in the current file, and in the rotated one (what a rotation drops).
    lines: u64,
    rotated_lines: u64,
    /// Lines dropped so far.
    dropped: u64,
    buf: Vec<u8>,
}

/// Where the current file goes when it is rotated.
pub fn rotated_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

impl AppLog {
    pub fn new(app: &str, path: PathBuf, max_bytes: u64) -> AppLog {
        AppLog {
            app: app.to_string(),
            path,
            max_bytes,
            file: None,
            failed: false,
            size: 0,
            lines: 0,
            rotated_lines: 0,
            dropped: 0,
            buf: Vec::with_capacity(64 << 10),
        }
    }

    /// Bytes one file may hold before it is rotated.
    fn rotate_at(&self) -> u64 {
        if self.max_bytes == 0 {
            u64::MAX
        } else {
            (self.max_bytes / 2).max(1)
        }
    }

    /// Logs a chunk of an app's output, read now from `stream`.
    pub fn write(&mut self, stream: Stream, data: &[u8]) {
        self.write_at(now_nanos(), stream, data);
    }

    pub fn write_at(&mut self, time: i64, stream: Stream, data: &[u8]) {
        if self.failed || data.is_empty() {
            return;
        }
        let stamp = super::format_time(time);
        let mut rest = data;
        while !rest.is_empty() {
            let (content, partial, used) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], false, i + 1),
                None => (rest, true, rest.len()),
            };
            rest = &rest[used..];
            let start = self.buf.len();
            format_record_at(
                &mut self.buf,
                stamp.as_bytes(),
                &Record {
                    time,
                    stream,
                    partial,
                    content,
                },
            );
            // Records go to the file in the order written; rotate between two of them,
            // never inside one.
            if self.size + self.buf.len() as u64 > self.rotate_at() && self.size + start as u64 > 0
            {
                let record = self.buf.split_off(start);
                self.flush();
                self.rotate(time);
                self.buf = record;
            }
            if !partial {
                self.lines += 1;
            }
        }
        self.flush();
    }

    fn open(&mut self) -> Option<&mut File> {
        if self.file.is_none() && !self.failed {
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => {
                    self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(f);
                }
                Err(_) => self.failed = true,
            }
        }
        self.file.as_mut()
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        if let Some(f) = self.open() {
            // A full disk loses output, never the pod.
            if f.write_all(&buf).is_ok() {
                self.size += buf.len() as u64;
            }
        }
        self.buf = buf;
        self.buf.clear();
    }

    /// The current file becomes `<app>.log.1`, replacing (dropping) the previous one; a
    /// note in the new file says what was dropped.
    fn rotate(&mut self, now: i64) {
        if std::fs::rename(&self.path, rotated_path(&self.path)).is_err() {
            return;
        }
        self.file = None;
        self.size = 0;
        let dropped = std::mem::replace(&mut self.rotated_lines, self.lines);
        self.lines = 0;
        if dropped > 0 {
            self.dropped += dropped;
            let note = format!(
                "[vessel: {} earlier lines of app {} have been dropped: its log is capped at {} bytes (--log-size)]",
                self.dropped, self.app, self.max_bytes
            );
            format_record(
                &mut self.buf,
                &Record {
                    time: now,
                    stream: Stream::Vessel,
                    partial: false,
                    content: note.as_bytes(),
                },
            );
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::parse_record;

    fn records(path: &Path) -> Vec<String> {
        std::fs::read(path)
            .unwrap_or_default()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let r = parse_record(l).expect("a record");
                format!(
                    "{} {} {}",
                    r.stream.name(),
                    if r.partial { "P" } else { "F" },
                    String::from_utf8_lossy(r.content)
                )
            })
            .collect()
    }

    #[test]
    fn lines_and_parts_of_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log = AppLog::new("a", path.clone(), 0);
        log.write(Stream::Stdout, b"one\ntw");
        log.write(Stream::Stderr, b"err\n");
        log.write(Stream::Stdout, b"o\n\n");
        assert_eq!(
            records(&path),
            [
                "stdout F one",
                "stdout P tw",
                "stderr F err",
                "stdout F o",
                "stdout F "
            ]
        );
    }

    #[test]
    fn a_silent_app_has_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log = AppLog::new("a", path.clone(), 0);
        log.write(Stream::Stdout, b"");
        assert!(!path.exists());
    }

    #[test]
    fn capped_logs_rotate_and_say_what_was_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let cap = 4096;
        let mut log = AppLog::new("a", path.clone(), cap);
        for i in 0..1000 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        let current = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(rotated_path(&path)).unwrap().len();
        assert!(current + old <= cap, "{current} + {old} > {cap}");
        let recs = records(&path);
        assert!(recs.last().unwrap().ends_with("line 999"), "{recs:?}");
        let all: Vec<String> = records(&rotated_path(&path))
            .into_iter()
            .chain(recs)
            .collect();
        let note = all.iter().find(|r| r.starts_with("vessel F")).unwrap();
        assert!(note.contains("dropped") && note.contains("app a"), "{note}");
        // The lines kept are the newest, in order, none twice.
        let kept: Vec<u32> = all
            .iter()
            .filter_map(|r| r.strip_prefix("stdout F line "))
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
        assert_eq!(*kept.last().unwrap(), 999);
    }
}
