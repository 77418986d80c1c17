//! A test helper that plays a hostile app (crates/vessel/tests/it/pod_file_handles.rs):
//! given a directory inside the pod that is a host volume and a file handle made on the
//! host (`HANDLE_TYPE:HEX`), it calls open_by_handle_at(2) with the volume as the mount
//! descriptor, the "shocker" breakout: a handle names any inode of the volume's
//! filesystem, so the call opens host files outside the volume. It prints what it read,
//! or why it could not.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::FromRawFd;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mount, handle] = &args[..] else {
        eprintln!("usage: shocker MOUNT-DIR HANDLE-TYPE:HEX");
        std::process::exit(2);
    };
    let (kind, hex) = handle.split_once(':').expect("HANDLE-TYPE:HEX");
    let kind: i32 = kind.parse().expect("a handle type");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    // struct file_handle { unsigned int handle_bytes; int handle_type; unsigned char f_handle[]; }
    let mut buf = Vec::with_capacity(8 + bytes.len());
    buf.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&bytes);
    let dir = CString::new(mount.as_str()).unwrap();
    // SAFETY: open of a NUL-terminated path.
    let mount_fd = unsafe { libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    if mount_fd < 0 {
        println!("shocker: open {mount}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    // SAFETY: buf holds a complete struct file_handle.
    let fd = unsafe { libc::open_by_handle_at(mount_fd, buf.as_mut_ptr().cast(), libc::O_RDONLY) };
    if fd < 0 {
        println!("shocker: refused: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: a fresh descriptor from open_by_handle_at.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    println!("shocker: read: {text}");
}
