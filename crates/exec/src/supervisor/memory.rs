//! Keeps the process that waits on a pod small. Starting a pod touches megabytes of the
//! binary's code (argument parsing, the store, spec building); waiting on it needs a few
//! pages. Dropping the binary's clean, read-only pages from our page tables returns that
//! memory to the page cache; whatever the wait loop runs faults back in.

use std::io::BufRead;

/// Unmaps the clean file-backed read-only pages of our own executable (text and rodata,
/// never relocated or written data). Only a hint: errors are ignored.
pub fn release_binary_pages() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    let Ok(f) = std::fs::File::open("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut ranges = Vec::new();
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first
            .split_once('-')
            .filter(|(a, _)| a.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let perms = fields.get(1).copied().unwrap_or("");
            let path = fields.get(5).copied().unwrap_or("");
            let candidate = path == exe && (perms == "r-xp" || perms == "r--p");
            current = match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                (Ok(start), Ok(end)) if candidate => Some((start, end, true)),
                _ => None,
            };
        } else if let Some(rest) = line.strip_prefix("Anonymous:") {
            // Copy-on-write pages (relocations) must stay: dropping them would undo them.
            if let Some((start, end, _)) = current.take() {
                if rest.trim().trim_end_matches("kB").trim() == "0" {
                    ranges.push((start, end));
                }
            }
        }
    }
    for (start, end) in ranges {
        // SAFETY: the range is a read-only, unmodified file mapping of our executable;
        // MADV_DONTNEED only drops page table entries, which fault back from the file.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}
