//! The guest's initramfs: Vessel's own static binary as `/init` (it becomes the guest
//! init when it finds itself PID 1 under that name), the kernel modules it loads, in
//! order (`/modules/order`), and `/dev/console`. Written as a cpio "newc" archive (the
//! format is one header per file; a dependency would be larger than the writer), cached
//! by the digest of the kernel and the binary.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::kvm::kernel::Module;

/// Where the guest init finds its modules, and the file naming their load order.
pub const MODULES_DIR: &str = "/modules";
pub const MODULES_ORDER: &str = "/modules/order";

/// One cpio newc archive being written.
pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> std::io::Result<()> {
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.ino += 1;
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.write(&[0u8; 3][..n])
    }

    pub fn dir(&mut self, name: &str) -> std::io::Result<()> {
        self.entry(name, 0o040755, (0, 0), &[])
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.entry(name, 0o100000 | mode, (0, 0), data)
    }

    pub fn char_device(&mut self, name: &str, major: u32, minor: u32) -> std::io::Result<()> {
        self.entry(name, 0o020600, (major, minor), &[])
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        Ok(self.out)
    }
}

/// A module's bytes, decompressed if the distribution compressed it (`.ko.xz`, `.ko.zst`,
/// `.ko.gz`: by the packages' own tools).
fn module_bytes(m: &Module) -> Result<Vec<u8>, String> {
    let p = m.path.to_string_lossy();
    let tool = if p.ends_with(".xz") {
        Some("xz")
    } else if p.ends_with(".zst") {
        Some("zstd")
    } else if p.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(&m.path).map_err(|e| format!("{p}: {e}")),
        Some(t) => {
            let out = std::process::Command::new(t)
                .args(["-dc", &p])
                .stderr(std::process::Stdio::piped())
                .output()
                .map_err(|e| format!("{p}: running {t} -dc: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{p}: {t} -dc: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(out.stdout)
        }
    }
}

/// The initramfs for `kernel` with these modules, built once into `cache_dir` and reused
/// while the kernel and this binary are the same (the name is their digest).
pub fn ensure(cache_dir: &Path, kernel: &Path, modules: &[Module]) -> Result<PathBuf, String> {
    let exe = std::fs::read("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    let kernel_bytes = std::fs::read(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?;
    let mut h = Sha256::new();
    h.update(Sha256::digest(&kernel_bytes));
    h.update(Sha256::digest(&exe));
    for m in modules {
        h.update(m.path.to_string_lossy().as_bytes());
        h.update([0]);
    }
    let key = hex::encode(h.finalize());
    let path = cache_dir.join(format!("initramfs-{}.cpio", &key[..32]));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| format!("{}: {e}", cache_dir.display()))?;
    let mut cpio = Cpio::new(Vec::with_capacity(exe.len() + (4 << 20)));
    let io = |e: std::io::Error| format!("writing the initramfs: {e}");
    for d in ["dev", "proc", "sys", "modules"] {
        cpio.dir(d).map_err(io)?;
    }
    cpio.char_device("dev/console", 5, 1).map_err(io)?;
    cpio.file("init", 0o755, &exe).map_err(io)?;
    let mut order = String::new();
    for m in modules {
        let bytes = module_bytes(m)?;
        cpio.file(&format!("modules/{}.ko", m.name), 0o644, &bytes)
            .map_err(io)?;
        order.push_str(&m.name);
        order.push('\n');
    }
    cpio.file("modules/order", 0o644, order.as_bytes())
        .map_err(io)?;
    let bytes = cpio.finish().map_err(io)?;
    let tmp = cache_dir.join(format!(".initramfs-{}.{}", &key[..32], std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_newc_and_aligned() {
        let mut c = Cpio::new(Vec::new());
        c.dir("dev").unwrap();
        c.file("init", 0o755, b"abcde").unwrap();
        let out = c.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        // The file's header: mode 0100755, size 5, name "init".
        let at = out.windows(4).position(|w| w == b"init").unwrap();
        let header = std::str::from_utf8(&out[at - 110..at]).unwrap();
        assert_eq!(&header[14..22], "000081ed");
        assert_eq!(&header[54..62], "00000005");
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
