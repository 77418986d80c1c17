//! `vessel logs`' side: an app's log read as a stream of lines, from a position found by
//! reading backwards from the end (`--tail`), following the file as it grows and is
//! rotated; several apps' lines merged by time. Nothing reads a whole log into memory:
//! what is held is one record, or the lines `--tail` asks for.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::writer::rotated_path;
use super::{parse_record, Stream};

/// A line of an app's output, put together from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Index of the app among those read.
    pub app: usize,
    /// When the line's first part was read by the supervisor (ns since the epoch); 0 for
    /// a log written by an older Vessel, which has no times.
    pub time: i64,
    pub stream: Stream,
    pub content: Vec<u8>,
    /// False for a part of a line cut because it grew too long, or a line still being
    /// written when the log was read.
    pub complete: bool,
}

/// Which streams to show (Vessel's notes always are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdout: bool,
    pub stderr: bool,
}

impl Streams {
    pub const ALL: Streams = Streams {
        stdout: true,
        stderr: true,
    };

    pub fn shows(self, s: Stream) -> bool {
        match s {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
            Stream::Vessel => true,
        }
    }
}

/// A line is handed out in pieces beyond this size, so a newline-free flood cannot fill
/// memory.
const MAX_LINE: usize = 1 << 20;
const BLOCK: usize = 64 << 10;

/// Where to start reading an app's log: the rotated file or the current one, at an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub rotated: bool,
    pub offset: u64,
}

/// The start of the last `n` lines of the streams shown, found by reading the files
/// backwards in blocks.
pub fn tail_start(path: &Path, n: usize, streams: Streams) -> io::Result<Start> {
    let mut count = 0usize;
    for rotated in [false, true] {
        let p = if rotated {
            rotated_path(path)
        } else {
            path.to_path_buf()
        };
        let mut f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let mut found = None;
        scan_back(&mut f, len, |end_offset, line| {
            let counts = match parse_record(line) {
                Some(r) => !r.partial && streams.shows(r.stream),
                None => true,
            };
            if counts {
                count += 1;
                if count > n {
                    found = Some(end_offset);
                    return true;
                }
            }
            false
        })?;
        if let Some(offset) = found {
            return Ok(Start { rotated, offset });
        }
    }
    Ok(Start {
        rotated: true,
        offset: 0,
    })
}

/// Calls `f(offset just past the line's newline, line)` for each newline-terminated line
/// of the first `len` bytes of `f`, last first, until it returns true.
fn scan_back(f: &mut File, len: u64, mut visit: impl FnMut(u64, &[u8]) -> bool) -> io::Result<()> {
    let mut pos = len;
    // Bytes from `pos` to the end of the line that starts before `pos`.
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    loop {
        if pos == 0 {
            if let Some(stripped) = carry.strip_suffix(b"\n") {
                visit(stripped.len() as u64 + 1, stripped);
            }
            return Ok(());
        }
        let start = pos.saturating_sub(BLOCK as u64);
        let mut buf = vec![0u8; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        buf.extend_from_slice(&carry);
        let mut end = buf.len();
        if first {
            // A last line with no newline yet is being written: not counted.
            end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            first = false;
        }
        // `end` is just past a newline (or 0); lines end at each newline before it.
        let mut line_end = end;
        while line_end > 0 {
            let body_end = line_end - 1; // the newline
            match buf[..body_end].iter().rposition(|b| *b == b'\n') {
                Some(i) => {
                    if visit(start + line_end as u64, &buf[i + 1..body_end]) {
                        return Ok(());
                    }
                    line_end = i + 1;
                }
                None => break,
            }
        }
        carry = buf[..line_end].to_vec();
        if carry.len() > 4 * MAX_LINE {
            // A line longer than any record: take where we are as its start.
            carry.clear();
        }
        pos = start;
    }
}

/// One app's log, read forward as lines.
pub struct AppReader {
    app: usize,
    /// The current file's path (what the writer appends to).
    path: PathBuf,
    /// The file being read, whether it is the current one, its inode, whether it holds
    /// raw output (an older Vessel's log, no records).
    file: Option<Open>,
    /// Read the rotated file first, from this offset.
    pending_rotated: Option<u64>,
    /// Where to start in the current file once opened.
    current_offset: u64,
    buf: Vec<u8>,
    /// Parts of a line per stream (stdout, stderr, vessel): time of the first, content.
    parts: [Option<(i64, Vec<u8>)>; 3],
    out: VecDeque<Line>,
    streams: Streams,
}

struct Open {
    file: File,
    current: bool,
    ino: u64,
    raw: Option<bool>,
}

fn slot(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::Vessel => 2,
    }
}

impl AppReader {
    /// Reads `path` (and its rotated file before it) from `start`, or from the beginning.
    pub fn new(app: usize, path: PathBuf, start: Option<Start>, streams: Streams) -> AppReader {
        let (pending_rotated, current_offset) = match start {
            Some(Start {
                rotated: true,
                offset,
            }) => (Some(offset), 0),
            Some(Start {
                rotated: false,
                offset,
            }) => (None, offset),
            None => (Some(0), 0),
        };
        AppReader {
            app,
            path,
            file: None,
            pending_rotated,
            current_offset,
            buf: Vec::new(),
            parts: [None, None, None],
            out: VecDeque::new(),
            streams,
        }
    }

    /// The next line available now; None when the log has nothing more for now (call
    /// again later to follow it).
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(l) = self.out.pop_front() {
                return Ok(Some(l));
            }
            if !self.read_more()? {
                return Ok(None);
            }
        }
    }

    /// Reads a block; false when there is nothing more to read now.
    fn read_more(&mut self) -> io::Result<bool> {
        if self.file.is_none() && !self.open_next()? {
            return Ok(false);
        }
        let open = self.file.as_mut().expect("opened above");
        let mut block = vec![0u8; BLOCK];
        let n = open.file.read(&mut block)?;
        if n > 0 {
            self.buf.extend_from_slice(&block[..n]);
            self.take_lines();
            return Ok(true);
        }
        // At the end of this file. The rotated file is done once read; the current one
        // is done only if the writer has moved on to a new current file.
        if open.current {
            match std::fs::metadata(&self.path) {
                Ok(m) if m.ino() != open.ino => {
                    // Rotated under us: what we read is now the rotated file, drained.
                    self.file = None;
                    self.current_offset = 0;
                    return Ok(true);
                }
                _ => return Ok(false),
            }
        }
        self.file = None;
        Ok(true)
    }

    /// Opens the rotated file (if still to be read and present), else the current one.
    fn open_next(&mut self) -> io::Result<bool> {
        if let Some(offset) = self.pending_rotated.take() {
            match File::open(rotated_path(&self.path)) {
                Ok(mut f) => {
                    f.seek(SeekFrom::Start(offset))?;
                    let ino = f.metadata()?.ino();
                    self.file = Some(Open {
                        file: f,
                        current: false,
                        ino,
                        raw: None,
                    });
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        match File::open(&self.path) {
            Ok(mut f) => {
                f.seek(SeekFrom::Start(self.current_offset))?;
                let ino = f.metadata()?.ino();
                self.file = Some(Open {
                    file: f,
                    current: true,
                    ino,
                    raw: None,
                });
                Ok(true)
            }
            // A silent app has no log yet.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Turns the complete physical lines in `buf` into lines.
    fn take_lines(&mut self) {
        let mut consumed = 0;
        while let Some(i) = self.buf[consumed..].iter().position(|b| *b == b'\n') {
            let end = consumed + i;
            let line = self.buf[consumed..end].to_vec();
            consumed = end + 1;
            self.take_line(&line);
        }
        self.buf.drain(..consumed);
        // Raw output with no newline for a long time: hand it out in pieces.
        let raw = self.file.as_ref().and_then(|o| o.raw) == Some(true);
        if raw && self.buf.len() > MAX_LINE {
            let content = std::mem::take(&mut self.buf);
            self.emit(0, Stream::Stdout, content, false);
        }
    }

    fn take_line(&mut self, line: &[u8]) {
        let record = parse_record(line);
        let open = self.file.as_mut().expect("reading a file");
        let raw = *open.raw.get_or_insert(record.is_none());
        let Some(r) = record.filter(|_| !raw) else {
            self.emit(0, Stream::Stdout, line.to_vec(), true);
            return;
        };
        let s = slot(r.stream);
        let (time, mut content) = self.parts[s].take().unwrap_or((r.time, Vec::new()));
        content.extend_from_slice(r.content);
        if !r.partial {
            self.emit(time, r.stream, content, true);
        } else if content.len() > MAX_LINE {
            self.emit(time, r.stream, content, false);
        } else {
            self.parts[s] = Some((time, content));
        }
    }

    fn emit(&mut self, time: i64, stream: Stream, content: Vec<u8>, complete: bool) {
        if self.streams.shows(stream) {
            self.out.push_back(Line {
                app: self.app,
                time,
                stream,
                content,
                complete,
            });
        }
    }

    /// Lines begun but not finished (the pod has ended: they will not be).
    pub fn unfinished(&mut self) -> Vec<Line> {
        let mut v = Vec::new();
        for s in [Stream::Stdout, Stream::Stderr, Stream::Vessel] {
            if let Some((time, content)) = self.parts[slot(s)].take() {
                if self.streams.shows(s) {
                    v.push(Line {
                        app: self.app,
                        time,
                        stream: s,
                        content,
                        complete: false,
                    });
                }
            }
        }
        v
    }
}

/// Several apps' logs merged by time (ties in app order). Each reader is drained of what
/// is available now; call again to follow.
pub struct Merge {
    readers: Vec<AppReader>,
    heads: Vec<Option<Line>>,
}

impl Merge {
    pub fn new(readers: Vec<AppReader>) -> Merge {
        let heads = readers.iter().map(|_| None).collect();
        Merge { readers, heads }
    }

    /// The earliest line any app has ready now.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        for (r, h) in self.readers.iter_mut().zip(self.heads.iter_mut()) {
            if h.is_none() {
                *h = r.next_line()?;
            }
        }
        let best = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|l| (l.time, i)))
            .min();
        Ok(best.and_then(|(_, i)| self.heads[i].take()))
    }

    /// Lines begun but not finished, once the pod has ended.
    pub fn unfinished(&mut self) -> Vec<Line> {
        let mut v: Vec<Line> = self
            .readers
            .iter_mut()
            .flat_map(|r| r.unfinished())
            .collect();
        v.sort_by_key(|l| (l.time, l.app));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::AppLog;
    use super::*;

    fn lines(m: &mut Merge) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(l) = m.next_line().unwrap() {
            v.push(format!(
                "{}:{}:{}",
                l.app,
                l.stream.name(),
                String::from_utf8_lossy(&l.content)
            ));
        }
        v
    }

    #[test]
    fn apps_interleave_by_time_and_parts_join() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let mut la = AppLog::new("a", a.clone(), 0);
        let mut lb = AppLog::new("b", b.clone(), 0);
        la.write_at(1, Stream::Stdout, b"a1\nhal");
        lb.write_at(2, Stream::Stderr, b"b1\n");
        la.write_at(3, Stream::Stdout, b"f\n");
        lb.write_at(4, Stream::Stdout, b"b2\n");
        let mut m = Merge::new(vec![
            AppReader::new(0, a.clone(), None, Streams::ALL),
            AppReader::new(1, b.clone(), None, Streams::ALL),
        ]);
        assert_eq!(
            lines(&mut m),
            ["0:stdout:a1", "0:stdout:half", "1:stderr:b1", "1:stdout:b2"]
        );
        // Following: more output appears later.
        la.write_at(5, Stream::Stdout, b"a3\n");
        assert_eq!(lines(&mut m), ["0:stdout:a3"]);
        // Only stdout.
        let only = Streams {
            stdout: true,
            stderr: false,
        };
        let mut m = Merge::new(vec![AppReader::new(1, b, None, only)]);
        assert_eq!(lines(&mut m), ["1:stdout:b2"]);
    }

    #[test]
    fn tail_reads_backwards_across_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log = AppLog::new("a", path.clone(), 8192);
        for i in 0..300 {
            log.write_at(i, Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        // The cap keeps about 130 of the 300 lines; the newest 52 are in the current file,
        // after the note about dropped lines.
        for n in [0, 1, 3, 40, 100] {
            let start = tail_start(&path, n, Streams::ALL).unwrap();
            let mut m = Merge::new(vec![AppReader::new(
                0,
                path.clone(),
                Some(start),
                Streams::ALL,
            )]);
            let got = lines(&mut m);
            // Vessel's notes count as lines (they are shown); the app's lines are the
            // newest, in order.
            assert_eq!(got.len(), n, "--tail={n}: {got:?}");
            let app: Vec<&String> = got.iter().filter(|l| l.contains(":stdout:")).collect();
            let want: Vec<String> = (300 - app.len()..300)
                .map(|i| format!("0:stdout:line {i}"))
                .collect();
            assert_eq!(app, want.iter().collect::<Vec<_>>(), "--tail={n}");
            assert!(
                n < 60 || got.iter().any(|l| l.contains(":vessel:")),
                "{got:?}"
            );
        }
        // More than the files hold: all of it (with the note about dropped lines).
        let start = tail_start(&path, 100_000, Streams::ALL).unwrap();
        assert_eq!(
            start,
            Start {
                rotated: true,
                offset: 0
            }
        );
    }

    #[test]
    fn rotation_while_following_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut log = AppLog::new("a", path.clone(), 4096);
        let mut r = Merge::new(vec![AppReader::new(0, path.clone(), None, Streams::ALL)]);
        let mut seen = Vec::new();
        for i in 0..200 {
            log.write_at(i, Stream::Stdout, format!("l{i}\n").as_bytes());
            if i % 7 == 0 {
                seen.extend(lines(&mut r));
            }
        }
        seen.extend(lines(&mut r));
        let got: Vec<String> = seen
            .into_iter()
            .filter(|l| l.contains(":stdout:"))
            .collect();
        let want: Vec<String> = (0..200).map(|i| format!("0:stdout:l{i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_older_raw_log_reads_as_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "plain\nbytes\n").unwrap();
        let mut m = Merge::new(vec![AppReader::new(0, path.clone(), None, Streams::ALL)]);
        assert_eq!(lines(&mut m), ["0:stdout:plain", "0:stdout:bytes"]);
        let start = tail_start(&path, 1, Streams::ALL).unwrap();
        let mut m = Merge::new(vec![AppReader::new(0, path, Some(start), Streams::ALL)]);
        assert_eq!(lines(&mut m), ["0:stdout:bytes"]);
    }
}
