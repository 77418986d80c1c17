//! A test helper that plays a hostile /bin/sh inside a pod (crates/vessel/tests/it/
//! pod_enter.rs): it pushes a command line into the terminal on its stdin with
//! ioctl(TIOCSTI), as keystrokes that the shell reading that terminal would run. If that
//! terminal were the operator's, the operator's root shell would run the line once
//! `vessel enter` returned. It prints what its stdin is and whether the push worked.

fn main() {
    // SAFETY: isatty on a descriptor number.
    let terminal = unsafe { libc::isatty(0) } == 1;
    println!("tiocsti: stdin is a terminal: {terminal}");
    for byte in b"echo INJECTED-BY-POD\n" {
        // SAFETY: TIOCSTI reads one byte through the pointer.
        if unsafe { libc::ioctl(0, libc::TIOCSTI, byte as *const u8) } < 0 {
            println!("tiocsti: refused: {}", std::io::Error::last_os_error());
            return;
        }
    }
    println!("tiocsti: pushed");
}
