//! The byte stream between a kvm pod's host-side init and its guest init, over one
//! virtio-serial port: frames of a tag byte, a little-endian u32 length and the payload.
//!
//! ```text
//! guest → host   R               booted: send the pod
//!                E <event line>  a report of the guest's init (`proto::Event`, checked
//!                                in the guest by `supervisor::witness`)
//!                O <app u16><stream u8><bytes>   an app's stdout (1) or stderr (2)
//!                P <id u32><stream u8><bytes>   an entered command's stdout (1) or stderr (2)
//!                Z <id u32><i32> an entered command's exit code (`vessel enter`)
//! host → guest   H <json>        the hand-over (`plan::Handover`, the guest's copy)
//!                S <i32>         a signal for the apps (stop)
//!                X <id u32><json>  `vessel enter`: run a command in an app (`kvm::enter`)
//!                I <id u32><bytes> its stdin; no bytes: the end of it
//! ```
//!
//! `vessel enter` speaks the same enter frames (X, I, P, Z) to the pod's init on the host
//! over a unix socket; the init numbers the sessions (`id`) on the port.

use crate::proto::Event;
use crate::supervisor::supervise::Stream;

/// Largest payload accepted: a hand-over with compiled filters fits many times over.
const MAX_LEN: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Ready,
    Handover(Vec<u8>),
    Event(Event),
    Output {
        app: u16,
        stream: Stream,
        data: Vec<u8>,
    },
    Signal(i32),
    Enter {
        id: u32,
        request: Vec<u8>,
    },
    Input {
        id: u32,
        data: Vec<u8>,
    },
    EnterOutput {
        id: u32,
        stream: Stream,
        data: Vec<u8>,
    },
    EnterExit {
        id: u32,
        code: i32,
    },
}

fn stream_byte(s: Stream) -> u8 {
    match s {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    }
}

fn with_id(id: u32, rest: &[u8]) -> Vec<u8> {
    let mut p = id.to_le_bytes().to_vec();
    p.extend_from_slice(rest);
    p
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, Vec<u8>) = match self {
            Frame::Ready => (b'R', Vec::new()),
            Frame::Handover(h) => (b'H', h.clone()),
            Frame::Event(e) => (b'E', e.to_string().trim_end().as_bytes().to_vec()),
            Frame::Output { app, stream, data } => {
                let mut p = app.to_le_bytes().to_vec();
                p.push(stream_byte(*stream));
                p.extend_from_slice(data);
                (b'O', p)
            }
            Frame::Signal(s) => (b'S', s.to_le_bytes().to_vec()),
            Frame::Enter { id, request } => (b'X', with_id(*id, request)),
            Frame::Input { id, data } => (b'I', with_id(*id, data)),
            Frame::EnterOutput { id, stream, data } => {
                let mut p = with_id(*id, &[stream_byte(*stream)]);
                p.extend_from_slice(data);
                (b'P', p)
            }
            Frame::EnterExit { id, code } => (b'Z', with_id(*id, &code.to_le_bytes())),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// Collects bytes as they come and hands out whole frames.
#[derive(Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame; Err for a stream that cannot be a frame (garbled: the other
    /// side is not Vessel's, or lost bytes).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let tag = self.buf[0];
        let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_LEN {
            return Err(format!("a frame of {len} bytes (tag {tag:#x})"));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        let bad = |what: &str| format!("a garbled {what} frame");
        Ok(Some(match tag {
            b'R' => Frame::Ready,
            b'H' => Frame::Handover(payload),
            b'E' => {
                let line = String::from_utf8(payload).map_err(|_| bad("report"))?;
                Frame::Event(Event::parse(&line).ok_or_else(|| bad("report"))?)
            }
            b'O' if payload.len() >= 3 => Frame::Output {
                app: u16::from_le_bytes([payload[0], payload[1]]),
                stream: if payload[2] == 2 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                data: payload[3..].to_vec(),
            },
            b'S' if payload.len() == 4 => Frame::Signal(i32::from_le_bytes([
                payload[0], payload[1], payload[2], payload[3],
            ])),
            b'X' | b'I' | b'P' | b'Z' if payload.len() >= 4 => {
                let id = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let rest = payload[4..].to_vec();
                match tag {
                    b'X' => Frame::Enter { id, request: rest },
                    b'I' => Frame::Input { id, data: rest },
                    b'P' if !rest.is_empty() => Frame::EnterOutput {
                        id,
                        stream: if rest[0] == 2 {
                            Stream::Stderr
                        } else {
                            Stream::Stdout
                        },
                        data: rest[1..].to_vec(),
                    },
                    b'Z' if rest.len() == 4 => Frame::EnterExit {
                        id,
                        code: i32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]),
                    },
                    _ => return Err(bad("enter")),
                }
            }
            other => return Err(format!("an unknown frame (tag {other:#x})")),
        }))
    }
}

/// Writes a whole frame to a blocking descriptor.
pub fn send(fd: std::os::fd::BorrowedFd<'_>, frame: &Frame) -> std::io::Result<()> {
    let bytes = frame.encode();
    let mut done = 0;
    while done < bytes.len() {
        match rustix::io::write(fd, &bytes[done..]) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut p = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let second = rustix::time::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                };
                let _ = rustix::event::poll(&mut p, Some(&second));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_split() {
        let frames = vec![
            Frame::Ready,
            Frame::Handover(b"{\"plan\":1}".to_vec()),
            Frame::Event(Event::Exited {
                app: 1,
                status: 256,
            }),
            Frame::Event(Event::Failed {
                app: 0,
                error: crate::error::Error::reported("not found", Some(2), true),
            }),
            Frame::Output {
                app: 3,
                stream: Stream::Stderr,
                data: b"hello\n".to_vec(),
            },
            Frame::Signal(15),
            Frame::Enter {
                id: 7,
                request: b"{\"app\":0}".to_vec(),
            },
            Frame::Input {
                id: 7,
                data: Vec::new(),
            },
            Frame::EnterOutput {
                id: 7,
                stream: Stream::Stdout,
                data: b"entered\n".to_vec(),
            },
            Frame::EnterExit { id: 7, code: 42 },
            Frame::Event(Event::Done),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.encode()).collect();
        for chunk in [1, 3, 7, bytes.len()] {
            let mut r = Reader::default();
            let mut got = Vec::new();
            for c in bytes.chunks(chunk) {
                r.push(c);
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split every {chunk} bytes");
        }
    }

    #[test]
    fn a_stream_that_is_not_frames_is_refused() {
        let mut r = Reader::default();
        r.push(b"Linux version 6.1");
        assert!(r.next_frame().is_err());
    }
}
