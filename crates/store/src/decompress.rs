//! Recognises a stream's compression by its magic bytes and decompresses it, optionally on
//! a thread of its own so that decompression and extraction overlap on two cores.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

const BUF: usize = 256 * 1024;

/// A decoder for any of the supported formats that can give its input back, so the
/// caller can drain and hash whatever follows the compressed stream.
pub enum Decoder<R: BufRead> {
    None(R),
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    Bzip2(bzip2::bufread::MultiBzDecoder<R>),
    Xz(liblzma::bufread::XzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    /// Picks the decoder by the stream's first bytes.
    pub fn detect(mut input: R) -> io::Result<(Compression, Decoder<R>)> {
        let kind = Compression::detect(input.fill_buf()?);
        let dec = match kind {
            Compression::None => Decoder::None(input),
            // Multi-member decoders: concatenated streams are one valid stream (pigz).
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Bzip2 => Decoder::Bzip2(bzip2::bufread::MultiBzDecoder::new(input)),
            Compression::Xz => Decoder::Xz(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(input)?),
        };
        Ok((kind, dec))
    }

    pub fn into_inner(self) -> R {
        match self {
            Decoder::None(r) => r,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Bzip2(d) => d.into_inner(),
            Decoder::Xz(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Bzip2(d) => d.read(buf),
            Decoder::Xz(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// Wraps `input` in the decoder its first bytes call for.
pub fn decoder<'a, R: Read + Send + 'a>(
    input: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let (kind, dec) = Decoder::detect(BufReader::with_capacity(BUF, input))?;
    Ok((kind, Box::new(dec)))
}

/// Refuse to inflate past this ratio once past RATIO_FLOOR bytes: the signature of a
/// decompression bomb. Real layers stay far below it (2 to 10 times, text-heavy ones 20).
pub const RATIO_LIMIT: u64 = 200;
pub const RATIO_FLOOR: u64 = 64 << 20;

/// Decompresses `input` on a thread of its own, hashing the compressed bytes (if `algo`
/// is given) as they are read. The join handle yields the compressed digest and size.
/// The compressed stream's digest (if asked for) and length, once it is fully read.
pub type CompressedResult = io::Result<(Option<crate::digest::Digest>, u64)>;

pub fn spawn_decompress<R: Read + Send + 'static>(
    input: R,
    algo: Option<crate::digest::Algorithm>,
    what: String,
) -> (ThreadedReader, JoinHandle<CompressedResult>) {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
    let handle = std::thread::spawn(move || {
        let hashing = crate::digest::HashingReader::new(
            input,
            algo.unwrap_or(crate::digest::Algorithm::Sha256),
        );
        let (kind, mut dec) = match Decoder::detect(BufReader::with_capacity(BUF, hashing)) {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(io::Error::new(
                    e.kind(),
                    format!("{}{e}", prefix(&what)),
                )));
                return Err(e);
            }
        };
        let mut out_total = 0u64;
        loop {
            let mut buf = vec![0u8; BUF];
            let mut filled = 0;
            let res = loop {
                if filled == buf.len() {
                    break Ok(());
                }
                match dec.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                }
            };
            if let Err(e) = res {
                let msg = format!(
                    "{}{} data is corrupt or truncated: {e}",
                    prefix(&what),
                    kind.name()
                );
                let _ = tx.send(Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone())));
                return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
            }
            out_total += filled as u64;
            if kind != Compression::None && out_total > RATIO_FLOOR {
                let compressed = dec_count(&dec);
                if out_total > compressed.saturating_mul(RATIO_LIMIT) {
                    let msg = format!(
                        "{}{} data expands more than {RATIO_LIMIT} times ({compressed} bytes to over {out_total}): refusing a decompression bomb",
                        prefix(&what),
                        kind.name()
                    );
                    let _ = tx.send(Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone())));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            if tx.send(Ok(buf)).is_err() {
                // The consumer stopped early; its own error is the one to report.
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "reader went away",
                ));
            }
        }
        drop(tx);
        let hashing = dec.into_inner().into_inner();
        let (digest, n) = hashing.finish()?;
        Ok((algo.map(|_| digest), n))
    });
    (ThreadedReader::from_channel(rx), handle)
}

/// "label: " or nothing.
fn prefix(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!("{label}: ")
    }
}

fn dec_count<R: Read>(dec: &Decoder<BufReader<crate::digest::HashingReader<R>>>) -> u64 {
    let inner = match dec {
        Decoder::None(r) => r,
        Decoder::Gzip(d) => d.get_ref(),
        Decoder::Bzip2(d) => d.get_ref(),
        Decoder::Xz(d) => d.get_ref(),
        Decoder::Zstd(d) => d.get_ref(),
    };
    inner.get_ref().count()
}

/// Runs `produce` on a thread that fills buffers from a reader, and hands the buffers to
/// the calling thread as a `Read`. Errors of the producer surface as read errors.
pub struct ThreadedReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    handle: Option<JoinHandle<()>>,
}

impl ThreadedReader {
    pub fn spawn<R: Read + Send + 'static>(mut source: R) -> ThreadedReader {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(8);
        let handle = std::thread::spawn(move || loop {
            let mut buf = vec![0u8; BUF];
            let mut filled = 0;
            // Fill whole buffers: fewer channel hand-offs.
            while filled < buf.len() {
                match source.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                return;
            }
            buf.truncate(filled);
            if tx.send(Ok(buf)).is_err() {
                return; // the reader went away
            }
        });
        let mut r = ThreadedReader::from_channel(rx);
        r.handle = Some(handle);
        r
    }

    fn from_channel(rx: Receiver<io::Result<Vec<u8>>>) -> ThreadedReader {
        ThreadedReader {
            rx,
            current: Vec::new(),
            pos: 0,
            done: false,
            handle: None,
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) => {
                    self.current = buf;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ThreadedReader {
    fn drop(&mut self) {
        // Unblock the producer by dropping the receiver first, then wait for it.
        let (_tx, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_and_decodes_gzip_and_zstd() {
        let data = b"hello vessel".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let (kind, mut r) = decoder(&gz[..]).unwrap();
        assert_eq!(kind, Compression::Gzip);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        let zs = zstd::encode_all(&data[..], 3).unwrap();
        let (kind, mut r) = decoder(&zs[..]).unwrap();
        assert_eq!(kind, Compression::Zstd);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn threaded_reader_passes_everything_and_errors() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        let mut r = ThreadedReader::spawn(std::io::Cursor::new(data.clone()));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);

        let truncated_gz = {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&data).unwrap();
            let mut v = gz.finish().unwrap();
            v.truncate(v.len() / 2);
            v
        };
        let (_, dec) = decoder(std::io::Cursor::new(truncated_gz)).unwrap();
        let mut r = ThreadedReader::spawn(dec);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
