//! A tar writer that writes exactly what it is told, byte by byte: names with `..`,
//! absolute names, links pointing anywhere, device nodes, setuid modes, PAX records. Real
//! tar libraries refuse to write most of these, which is the point of hostile archives.

const BLOCK: usize = 512;

/// One ustar header's fields; `TarWriter` fills the checksum and the magic.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: u64,
    /// ustar type flag: b'0' file, b'1' hard link, b'2' symlink, b'3' char device,
    /// b'4' block device, b'5' directory, b'6' fifo, b'x' PAX extended header.
    pub kind: u8,
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
}

impl Header {
    pub fn new(kind: u8, name: &str) -> Header {
        Header {
            name: name.as_bytes().to_vec(),
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 1_700_000_000,
            kind,
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
        }
    }

    /// The 512 bytes of this header. Names that do not fit must go in a PAX record first.
    pub fn encode(&self) -> [u8; BLOCK] {
        assert!(
            self.name.len() <= 100,
            "name too long for a ustar header: use a PAX path"
        );
        assert!(
            self.link.len() <= 100,
            "link too long for a ustar header: use a PAX linkpath"
        );
        let mut h = [0u8; BLOCK];
        h[..self.name.len()].copy_from_slice(&self.name);
        put_octal(&mut h[100..108], u64::from(self.mode));
        put_octal(&mut h[108..116], u64::from(self.uid));
        put_octal(&mut h[116..124], u64::from(self.gid));
        put_octal(&mut h[124..136], self.size);
        put_octal(&mut h[136..148], self.mtime);
        h[156] = self.kind;
        h[157..157 + self.link.len()].copy_from_slice(&self.link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        put_octal(&mut h[329..337], u64::from(self.dev_major));
        put_octal(&mut h[337..345], u64::from(self.dev_minor));
        // The checksum is computed with its own field read as eight spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let digits = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(digits.as_bytes());
        h
    }
}

/// Zero-padded octal with a trailing NUL, as ustar numeric fields are written.
fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    assert!(
        digits.len() <= width,
        "{value} does not fit a {width}-digit tar field"
    );
    field[..width].copy_from_slice(digits.as_bytes());
    field[width] = 0;
}

/// One PAX record: "<length> <key>=<value>\n", where length counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = 1 + key.len() + 1 + value.len() + 1;
    let mut total = body_len + 1;
    while total.to_string().len() + body_len != total {
        total = total.to_string().len() + body_len;
    }
    let mut rec = format!("{total} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

#[derive(Default)]
pub struct TarWriter {
    out: Vec<u8>,
}

impl TarWriter {
    pub fn new() -> TarWriter {
        TarWriter::default()
    }

    /// Writes a header and its data, padded to a whole block. Long names and link
    /// targets go into a PAX header in front, as real producers do.
    pub fn entry(&mut self, mut header: Header, data: &[u8]) -> &mut Self {
        let mut pax = Vec::new();
        if header.name.len() > 100 {
            pax.push(("path", std::mem::take(&mut header.name)));
            header.name = b"././@PaxPathTooLong".to_vec();
        }
        if header.link.len() > 100 {
            pax.push(("linkpath", std::mem::take(&mut header.link)));
        }
        if !pax.is_empty() {
            let pairs: Vec<(&str, &[u8])> = pax.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            self.pax(&pairs);
        }
        header.size = data.len() as u64;
        self.header(&header);
        self.data(data);
        self
    }

    /// Writes a header exactly as given (its size field included) and no data.
    pub fn header(&mut self, header: &Header) -> &mut Self {
        self.out.extend_from_slice(&header.encode());
        self
    }

    /// Writes data and pads it to a whole block.
    pub fn data(&mut self, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let mut h = Header::new(b'x', "PaxHeaders/entry");
        h.size = body.len() as u64;
        self.header(&h);
        self.data(&body)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(Header::new(b'5', name), &[])
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(Header::new(b'0', name), data)
    }

    pub fn file_with_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let mut h = Header::new(b'0', name);
        h.mode = mode;
        self.entry(h, data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new(b'2', name);
        h.mode = 0o777;
        h.link = target.as_bytes().to_vec();
        self.entry(h, &[])
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new(b'1', name);
        h.link = target.as_bytes().to_vec();
        self.entry(h, &[])
    }

    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.device(b'3', name, major, minor)
    }

    pub fn block_device(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.device(b'4', name, major, minor)
    }

    fn device(&mut self, kind: u8, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new(kind, name);
        h.mode = 0o666;
        h.dev_major = major;
        h.dev_minor = minor;
        self.entry(h, &[])
    }

    /// The archive so far plus the two zero blocks that end a tar.
    pub fn finish(&self) -> Vec<u8> {
        let mut v = self.out.clone();
        v.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        v
    }

    /// The archive so far, without an end marker (to cut it short on purpose).
    pub fn unterminated(&self) -> Vec<u8> {
        self.out.clone()
    }
}
