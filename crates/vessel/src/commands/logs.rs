//! `vessel logs`: the apps' output, merged by time, stdout to stdout and stderr to
//! stderr, streamed from the log files (see pod::logs for their format).

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use pod::logs::reader::{tail_start, AppReader, Line, Merge, Streams};
use pod::logs::{format_time, Stream};
use pod::state::PodState;

use crate::cli::{LogStream, LogsArgs};
use crate::commands::pods::uuid_of;
use crate::context::Context;

pub fn run(ctx: &Context, args: &LogsArgs) -> Result<i32> {
    let mut pod = ctx.pods()?.find(&uuid_of(&args.pod)?)?;
    let state = PodState::load(&pod.path())?;
    let apps: Vec<String> = match &args.app {
        Some(a) => {
            if !state.apps.iter().any(|x| &x.name == a) {
                bail!(
                    "pod {} has no app named {a:?} (apps: {})",
                    pod.uuid,
                    state
                        .apps
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            vec![a.clone()]
        }
        None => state.apps.iter().map(|a| a.name.clone()).collect(),
    };
    let streams = match args.stream {
        LogStream::All => Streams::ALL,
        LogStream::Stdout => Streams {
            stdout: true,
            stderr: false,
        },
        LogStream::Stderr => Streams {
            stdout: false,
            stderr: true,
        },
    };
    let since = match &args.since {
        Some(s) => Some(parse_since(s)?),
        None => None,
    };
    let paths = pod::layout::PodPaths::new(pod.path());
    let mut readers = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let path = paths.log(app);
        let start = match args.tail {
            Some(n) => Some(
                tail_start(&path, n, streams)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        readers.push(AppReader::new(i, path, start, streams));
    }
    let mut merge = Merge::new(readers);
    let mut out = Printer {
        names: if apps.len() > 1 {
            apps.clone()
        } else {
            Vec::new()
        },
        width: apps.iter().map(|a| a.len()).max().unwrap_or(0),
        timestamps: args.timestamps,
        since,
        stdout: std::io::stdout().lock(),
        stderr: std::io::stderr().lock(),
    };
    // With --tail, only the last N lines of all shown at first: a window over the
    // merged lines (each app's reader already starts at its own last N).
    let mut tail = args.tail;
    loop {
        let mut window = std::collections::VecDeque::new();
        while let Some(line) = merge.next_line()? {
            if out.since.is_some_and(|s| line.time != 0 && line.time < s) {
                continue;
            }
            match tail {
                Some(n) => {
                    window.push_back(line);
                    if window.len() > n {
                        window.pop_front();
                    }
                }
                None => out.print(&line)?,
            }
        }
        if !args.follow && tail.is_some() {
            // An ended pod's last line may lack its newline: it is a line `--tail` counts.
            window.extend(merge.unfinished());
            while tail.is_some_and(|n| window.len() > n) {
                window.pop_front();
            }
        }
        for line in window {
            out.print(&line)?;
        }
        tail = None;
        if !args.follow {
            break;
        }
        // Following: stop once the pod has exited and everything it wrote is out.
        let running = pod.refresh().is_ok() && pod.is_locked();
        if !running {
            while let Some(line) = merge.next_line()? {
                out.print(&line)?;
            }
            break;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(100));
    }
    for line in merge.unfinished() {
        out.print(&line)?;
    }
    out.flush()?;
    Ok(0)
}

/// `--since`: an RFC 3339 time, or a duration back from now (10m, 1h30m).
fn parse_since(s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t
            .timestamp_nanos_opt()
            .context("--since: the time is out of range");
    }
    let d = crate::cli::values::parse_duration(s)
        .map_err(|e| anyhow::anyhow!("--since: {e}, or an RFC 3339 time"))?;
    let now = pod::logs::now_nanos();
    Ok(now - i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).min(now))
}

struct Printer<'a> {
    /// App names to prefix lines with, when several apps are shown.
    names: Vec<String>,
    width: usize,
    timestamps: bool,
    since: Option<i64>,
    stdout: std::io::StdoutLock<'a>,
    stderr: std::io::StderrLock<'a>,
}

impl Printer<'_> {
    fn print(&mut self, line: &Line) -> Result<()> {
        if self.since.is_some_and(|s| line.time != 0 && line.time < s) {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(line.content.len() + 64);
        if self.timestamps && line.time != 0 {
            buf.extend_from_slice(format_time(line.time).as_bytes());
            buf.push(b' ');
        }
        if let Some(name) = self.names.get(line.app) {
            buf.extend_from_slice(format!("{name:<w$} | ", w = self.width).as_bytes());
        }
        buf.extend_from_slice(&line.content);
        if line.complete {
            buf.push(b'\n');
        }
        match line.stream {
            Stream::Stdout => self.stdout.write_all(&buf)?,
            Stream::Stderr | Stream::Vessel => self.stderr.write_all(&buf)?,
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.stdout.flush()?;
        self.stderr.flush()?;
        Ok(())
    }
}
