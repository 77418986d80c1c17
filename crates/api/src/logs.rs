//! `GetLogs`: an app's log file (`logs/<app>.log`, what the supervisor received on the
//! app's stdout and stderr), its last lines, and what is appended while following. The
//! files hold no timestamps, so `since_time`/`until_time` are refused rather than ignored.
//! Lines of several apps (no app named) are prefixed with `<app>: `.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// One app's log being read.
pub struct LogFile {
    pub app: String,
    pub path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogFile {
    pub fn new(app: &str, path: PathBuf) -> LogFile {
        LogFile {
            app: app.to_string(),
            path,
            offset: 0,
            partial: String::new(),
        }
    }

    /// The complete lines appended since the last read.
    pub fn read_new(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let Ok(n) = f.read_to_end(&mut buf) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
    }

    /// What is left without a newline (at the end of a finished pod).
    pub fn take_partial(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
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

    #[test]
    fn reads_whole_lines_as_they_come() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let mut f = LogFile::new("a", p.clone());
        assert!(f.read_new().is_empty(), "no file yet");
        std::fs::write(&p, "one\ntw").unwrap();
        assert_eq!(f.read_new(), vec!["one"]);
        std::fs::write(&p, "one\ntwo\nthree\n").unwrap();
        assert_eq!(f.read_new(), vec!["two", "three"]);
        assert_eq!(
            tail(vec!["1".into(), "2".into(), "3".into()], 2),
            vec!["2", "3"]
        );
        assert_eq!(tail(vec!["1".into()], 0), vec!["1"]);
    }
}
