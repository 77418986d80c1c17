//! Recognises a stream's compression by its magic bytes and decompresses it, optionally on
//! a thread of its own (which also hashes both streams) so that decompression and
//! extraction overlap on two cores.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::digest::{Algorithm, Digest, Hasher, HashingReader};

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

/// Bytes per buffer handed between threads: big enough that hand-offs are rare, small
/// enough to stay in the cache of the core that reads it next.
const BUF: usize = 256 * 1024;
/// Buffers in flight between the decompressing thread and the extracting one.
const IN_FLIGHT: usize = 8;

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

/// What the decompressing thread learnt by the end of the stream.
#[derive(Debug, Clone)]
pub struct StreamDigests {
    /// The compressed stream's digest, when one was asked for.
    pub compressed: Option<Digest>,
    pub compressed_len: u64,
    /// The decompressed stream's digest (an OCI diff_id, an ACI's image ID).
    pub plain: Digest,
    pub plain_len: u64,
}

pub type StreamResult = io::Result<StreamDigests>;

/// Decompresses `input` on a thread of its own, hashing the compressed bytes (with
/// `compressed_algo`, if given) as they are read and the decompressed bytes (with
/// `plain_algo`) as they are handed over. Both hashes run there so that the extracting
/// thread, which also writes every file, has less to do. The reader must be read to its
/// end for the digests to cover the whole stream; the join handle then yields them.
pub fn spawn_decompress<R: Read + Send + 'static>(
    input: R,
    compressed_algo: Option<Algorithm>,
    plain_algo: Algorithm,
    what: String,
) -> (ThreadedReader, JoinHandle<StreamResult>) {
    let (pipe, reader) = pipe();
    let handle = std::thread::spawn(move || {
        let fail = |e: io::Error| {
            pipe.fail(io::Error::new(e.kind(), e.to_string()));
            Err(e)
        };
        let hashing = HashingReader::new(input, compressed_algo.unwrap_or(Algorithm::Sha256));
        let (kind, mut dec) = match Decoder::detect(BufReader::with_capacity(BUF, hashing)) {
            Ok(d) => d,
            Err(e) => return fail(io::Error::new(e.kind(), format!("{}{e}", prefix(&what)))),
        };
        let mut plain = Hasher::new(plain_algo);
        let mut plain_len = 0u64;
        loop {
            let mut buf = pipe.buffer();
            let filled = match fill(&mut dec, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    return fail(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}{} data is corrupt or truncated: {e}",
                            prefix(&what),
                            kind.name()
                        ),
                    ))
                }
            };
            plain_len += filled as u64;
            if kind != Compression::None && plain_len > RATIO_FLOOR {
                let compressed = dec_count(&dec);
                if plain_len > compressed.saturating_mul(RATIO_LIMIT) {
                    return fail(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}{} data expands more than {RATIO_LIMIT} times ({compressed} bytes to over {plain_len}): refusing a decompression bomb",
                            prefix(&what),
                            kind.name()
                        ),
                    ));
                }
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            plain.update(&buf);
            if !pipe.send(buf) {
                // The consumer stopped early; its own error is the one to report.
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "reader went away",
                ));
            }
        }
        drop(pipe);
        let (compressed, compressed_len) = dec.into_inner().into_inner().finish()?;
        Ok(StreamDigests {
            compressed: compressed_algo.map(|_| compressed),
            compressed_len,
            plain: plain.finish(),
            plain_len,
        })
    });
    (reader, handle)
}

/// Reads until `buf` is full or the stream ends: fewer, fuller hand-offs.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// "label: " or nothing.
fn prefix(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!("{label}: ")
    }
}

fn dec_count<R: Read>(dec: &Decoder<BufReader<HashingReader<R>>>) -> u64 {
    let inner = match dec {
        Decoder::None(r) => r,
        Decoder::Gzip(d) => d.get_ref(),
        Decoder::Bzip2(d) => d.get_ref(),
        Decoder::Xz(d) => d.get_ref(),
        Decoder::Zstd(d) => d.get_ref(),
    };
    inner.get_ref().count()
}

/// The producing end of a pipe between threads: full buffers go one way, emptied ones
/// come back to be filled again, so no buffer is allocated and zeroed per chunk.
struct Pipe {
    full: SyncSender<io::Result<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
}

fn pipe() -> (Pipe, ThreadedReader) {
    let (full, filled) = sync_channel(IN_FLIGHT);
    let (give_back, spare) = sync_channel(IN_FLIGHT + 2);
    let reader = ThreadedReader {
        rx: filled,
        give_back,
        current: Vec::new(),
        pos: 0,
        done: false,
        handle: None,
    };
    (Pipe { full, spare }, reader)
}

impl Pipe {
    /// A buffer of BUF bytes, an emptied one if the reader gave one back.
    fn buffer(&self) -> Vec<u8> {
        let mut buf = self.spare.try_recv().unwrap_or_default();
        buf.resize(BUF, 0);
        buf
    }

    /// False if the reader went away.
    fn send(&self, buf: Vec<u8>) -> bool {
        self.full.send(Ok(buf)).is_ok()
    }

    fn fail(&self, e: io::Error) {
        let _ = self.full.send(Err(e));
    }
}

/// Runs a producer on a thread that fills buffers from a reader, and hands the buffers to
/// the calling thread as a `Read`. Errors of the producer surface as read errors.
pub struct ThreadedReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    give_back: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
    handle: Option<JoinHandle<()>>,
}

impl ThreadedReader {
    pub fn spawn<R: Read + Send + 'static>(mut source: R) -> ThreadedReader {
        let (pipe, mut reader) = pipe();
        let handle = std::thread::spawn(move || loop {
            let mut buf = pipe.buffer();
            match fill(&mut source, &mut buf) {
                Ok(0) => return,
                Ok(n) => buf.truncate(n),
                Err(e) => return pipe.fail(e),
            }
            if !pipe.send(buf) {
                return; // the reader went away
            }
        });
        reader.handle = Some(handle);
        reader
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
                    let emptied = std::mem::replace(&mut self.current, buf);
                    // Never wait here: a producer that has enough spares lets this one go.
                    let _ = self.give_back.try_send(emptied);
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
