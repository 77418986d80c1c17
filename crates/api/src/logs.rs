//! `GetLogs`: the apps' logs (`logs/<app>.log`, the CRI-format records the supervisor
//! writes, see `pod::logs`) read with the reader `vessel logs` uses: the last lines found
//! from the end of the files, several apps merged by time, the files followed as they
//! grow and rotate. `since_time` and `until_time` are seconds since the epoch (rkt took
//! them so) compared with the time the supervisor read each line; lines of a log written
//! before Vessel kept times pass both filters. Lines of several apps (no app named) are
//! prefixed with `<app>: `.

use std::io;
use std::path::PathBuf;

use pod::logs::reader::{tail_start, AppReader, Line, Merge, Streams};

/// What a `GetLogs` call reads.
pub struct Request {
    /// Each app's name and log path.
    pub apps: Vec<(String, PathBuf)>,
    /// The last lines to start with (all for 0 or less).
    pub lines: i32,
    pub since_time: i64,
    pub until_time: i64,
}

/// A pod's logs being read.
pub struct PodLogs {
    apps: Vec<String>,
    merge: Merge,
    prefix: bool,
    since_ns: i64,
    until_ns: i64,
}

impl PodLogs {
    /// Opens the logs and returns them with the lines there now (the last `lines` of
    /// them when asked).
    pub fn open(req: Request) -> io::Result<(PodLogs, Vec<String>)> {
        let n = usize::try_from(req.lines).unwrap_or(0);
        let mut readers = Vec::new();
        for (i, (_, path)) in req.apps.iter().enumerate() {
            let start = match n {
                0 => None,
                n => Some(tail_start(path, n, Streams::ALL)?),
            };
            readers.push(AppReader::new(i, path.clone(), start, Streams::ALL));
        }
        let mut logs = PodLogs {
            prefix: req.apps.len() > 1,
            apps: req.apps.into_iter().map(|(a, _)| a).collect(),
            merge: Merge::new(readers),
            since_ns: req.since_time.saturating_mul(1_000_000_000),
            until_ns: match req.until_time {
                0 => i64::MAX,
                t => t.saturating_mul(1_000_000_000),
            },
        };
        let first = tail(logs.read_available()?, req.lines);
        Ok((logs, first))
    }

    /// The lines appended since the last read.
    pub fn read_available(&mut self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(l) = self.merge.next_line()? {
            self.push(&mut out, l);
        }
        Ok(out)
    }

    /// Lines begun but never finished: the pod has ended.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for l in self.merge.unfinished() {
            self.push(&mut out, l);
        }
        out
    }

    fn push(&self, out: &mut Vec<String>, l: Line) {
        let timed = l.time != 0;
        if timed && (l.time < self.since_ns || l.time > self.until_ns) {
            return;
        }
        let text = String::from_utf8_lossy(&l.content);
        out.push(match self.prefix {
            true => format!("{}: {text}", self.apps[l.app]),
            false => text.into_owned(),
        });
    }
}

/// The last `n` of `lines` (all for n <= 0).
pub fn tail(mut lines: Vec<String>, n: i32) -> Vec<String> {
    if n > 0 && lines.len() > n as usize {
        lines.drain(..lines.len() - n as usize);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use pod::logs::writer::AppLog;
    use pod::logs::Stream;

    fn request(apps: &[(&str, PathBuf)], lines: i32, since: i64, until: i64) -> Request {
        Request {
            apps: apps
                .iter()
                .map(|(a, p)| (a.to_string(), p.clone()))
                .collect(),
            lines,
            since_time: since,
            until_time: until,
        }
    }

    #[test]
    fn reads_merges_tails_and_follows_the_supervisors_records() {
        let d = tempfile::tempdir().unwrap();
        let (pa, pb) = (d.path().join("a.log"), d.path().join("b.log"));
        let mut a = AppLog::new("a", pa.clone(), 1 << 20);
        let mut b = AppLog::new("b", pb.clone(), 1 << 20);
        a.write_at(1_000_000_000, Stream::Stdout, b"a1\n");
        b.write_at(2_000_000_000, Stream::Stderr, b"b1\n");
        a.write_at(3_000_000_000, Stream::Stdout, b"a2\nunfin");
        let apps = [("a", pa.clone()), ("b", pb.clone())];
        let (mut logs, first) = PodLogs::open(request(&apps, 0, 0, 0)).unwrap();
        assert_eq!(first, ["a: a1", "b: b1", "a: a2"]);
        b.write_at(4_000_000_000, Stream::Stdout, b"b2\n");
        assert_eq!(logs.read_available().unwrap(), ["b: b2"]);
        assert_eq!(logs.finish(), ["a: unfin"]);
        let (_, last) = PodLogs::open(request(&apps, 2, 0, 0)).unwrap();
        assert_eq!(last, ["a: a2", "b: b2"]);
        let (_, one) = PodLogs::open(request(&apps[..1], 0, 0, 0)).unwrap();
        assert_eq!(one, ["a1", "a2"], "one app: no prefix");
        // Seconds since the epoch, both ends included.
        let (_, window) = PodLogs::open(request(&apps, 0, 2, 3)).unwrap();
        assert_eq!(window, ["b: b1", "a: a2"]);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(
            tail(vec!["1".into(), "2".into(), "3".into()], 2),
            vec!["2", "3"]
        );
        assert_eq!(tail(vec!["1".into()], 0), vec!["1"]);
    }
}
