//! The guest kernel: its version, read from the bzImage's own header (never from the
//! running kernel's `uname`), and the modules the guest init loads, in dependency order
//! from that version's `modules.dep`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The modules the guest needs that a distribution kernel builds as modules: virtio over
/// PCI (q35) and MMIO (microvm), the serial port to the host, 9p over virtio, and the
/// network device the pod's interfaces become.
pub const WANTED: &[&str] = &[
    "virtio_pci",
    "virtio_net",
    "virtio_mmio",
    "virtio_console",
    "9pnet_virtio",
    "9p",
];

/// The version string a bzImage carries (boot protocol 2.00+: `kernel_version` at 0x20e
/// points, less 0x200, at a NUL-terminated string whose first word is the release).
pub fn version(kernel: &Path) -> Result<String, String> {
    let data = std::fs::read(kernel).map_err(|e| format!("{}: {e}", kernel.display()))?;
    let not = || {
        format!(
            "{}: not a Linux kernel image (no bzImage header)",
            kernel.display()
        )
    };
    if data.len() < 0x210 || &data[0x202..0x206] != b"HdrS" {
        return Err(not());
    }
    let at = u16::from_le_bytes([data[0x20e], data[0x20f]]) as usize + 0x200;
    let text = data.get(at..at + 256).ok_or_else(not)?;
    let end = text.iter().position(|b| *b == 0).ok_or_else(not)?;
    let release = std::str::from_utf8(&text[..end])
        .ok()
        .and_then(|s| s.split_whitespace().next())
        .filter(|s| !s.is_empty())
        .ok_or_else(not)?;
    Ok(release.to_string())
}

/// A module file to put in the initramfs: its name there and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub path: PathBuf,
}

/// The wanted modules and everything they need, dependencies first, from
/// `<modules_dir>/modules.dep`. A module built into the kernel (absent from the file but
/// named in `modules.builtin`) needs nothing.
pub fn modules(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<Module>, String> {
    let dep_path = modules_dir.join("modules.dep");
    let deps = std::fs::read_to_string(&dep_path)
        .map_err(|e| format!("{}: {e} (the guest kernel's modules)", dep_path.display()))?;
    let builtin = std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    let mut table: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in deps.lines() {
        let Some((file, rest)) = line.split_once(':') else {
            continue;
        };
        table.insert(
            module_name(file),
            (
                file.to_string(),
                rest.split_whitespace().map(module_name).collect(),
            ),
        );
    }
    let mut order: Vec<Module> = Vec::new();
    fn visit(
        name: &str,
        table: &HashMap<String, (String, Vec<String>)>,
        dir: &Path,
        order: &mut Vec<Module>,
        depth: usize,
    ) -> Result<(), String> {
        if order.iter().any(|m| m.name == name) || depth > 64 {
            return Ok(());
        }
        let (file, needs) = table
            .get(name)
            .ok_or_else(|| format!("module {name}: not in modules.dep"))?;
        for n in needs {
            visit(n, table, dir, order, depth + 1)?;
        }
        order.push(Module {
            name: name.to_string(),
            path: dir.join(file),
        });
        Ok(())
    }
    for w in wanted {
        if !table.contains_key(*w) {
            let built_in = builtin.lines().any(|l| module_name(l) == *w);
            if built_in {
                continue;
            }
            return Err(format!(
                "{}: the guest kernel has no module {w} (built in or loadable)",
                modules_dir.display()
            ));
        }
        visit(w, &table, modules_dir, &mut order, 0)?;
    }
    Ok(order)
}

/// `kernel/fs/9p/9p.ko.xz` → `9p`; modprobe treats `-` and `_` alike.
fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_come_after_what_they_need() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("modules.dep"),
            "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko\n\
             kernel/net/9p/9pnet.ko:\nkernel/fs/netfs/netfs.ko:\n\
             kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_ring.ko:\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules.builtin"),
            "kernel/drivers/virtio/virtio_pci.ko\n",
        )
        .unwrap();
        let names: Vec<String> = modules(dir.path(), &["virtio_pci", "9pnet_virtio", "9p"])
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(
            names,
            [
                "9pnet",
                "virtio_ring",
                "virtio",
                "9pnet_virtio",
                "netfs",
                "9p"
            ]
        );
        let e = modules(dir.path(), &["vsock"]).unwrap_err();
        assert!(e.contains("no module vsock"), "{e}");
    }

    #[test]
    fn a_file_without_a_bzimage_header_is_not_a_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("vmlinuz");
        std::fs::write(&junk, vec![7u8; 4096]).unwrap();
        assert!(version(&junk).unwrap_err().contains("not a Linux kernel"));
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        img[0x300..0x300 + 20].copy_from_slice(b"6.1.0-57-amd64 (deb)");
        assert!(version(&junk.with_file_name("x")).is_err());
        std::fs::write(&junk, &img).unwrap();
        assert_eq!(version(&junk).unwrap(), "6.1.0-57-amd64");
    }
}
