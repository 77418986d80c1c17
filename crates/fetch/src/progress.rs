//! Progress of downloads: one bar per download (bytes, rate) on a terminal; nothing
//! otherwise, so scripts and logs stay clean.

use std::io::{IsTerminal, Read};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Bars only when not quiet and stderr is a terminal.
    pub fn new(quiet: bool) -> Progress {
        let on = !quiet && std::io::stderr().is_terminal();
        Progress {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    pub fn off() -> Progress {
        Progress { multi: None }
    }

    /// Wraps a download's body so that reading it advances a bar labelled `label`.
    pub fn track<R: Read>(&self, label: &str, total: Option<u64>, inner: R) -> Tracked<R> {
        let bar = self.multi.as_ref().map(|m| {
            let bar = match total {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{prefix:20} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::no_length().with_style(
                    ProgressStyle::with_template("{prefix:20} {bytes:>10} {binary_bytes_per_sec:>12}")
                        .expect("valid template"),
                ),
            };
            let bar = m.add(bar);
            bar.set_prefix(label.chars().take(20).collect::<String>());
            bar
        });
        Tracked { inner, bar }
    }
}

pub struct Tracked<R> {
    inner: R,
    bar: Option<ProgressBar>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            if n == 0 {
                b.finish();
            } else {
                b.inc(n as u64);
            }
        }
        Ok(n)
    }
}

impl<R> Drop for Tracked<R> {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            if !b.is_finished() {
                b.abandon();
            }
        }
    }
}
