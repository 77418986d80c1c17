//! open_by_handle_at ("shocker"): an app that keeps CAP_DAC_READ_SEARCH and sees a host
//! volume could open any file of the volume's filesystem from a handle. The default seccomp
//! filter refuses the call whatever the capabilities (hardening finding 8); an operator's
//! own profile may still allow it by name.

use std::ffi::CString;

use crate::common;
use crate::podkit::PodEnv;

/// A handle for `path` made on the host: `TYPE:HEX`, as the helper takes it.
fn host_handle(path: &std::path::Path) -> String {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // struct file_handle with room for MAX_HANDLE_SZ (128) bytes.
    let mut buf = [0u8; 8 + 128];
    buf[..4].copy_from_slice(&128u32.to_ne_bytes());
    let mut mount_id = 0;
    // SAFETY: buf is a file_handle of 128 bytes, the path is NUL-terminated.
    let r = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut mount_id,
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "name_to_handle_at {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let len = u32::from_ne_bytes(buf[..4].try_into().unwrap()) as usize;
    let kind = i32::from_ne_bytes(buf[4..8].try_into().unwrap());
    let hex: String = buf[8..8 + len].iter().map(|b| format!("{b:02x}")).collect();
    format!("{kind}:{hex}")
}

/// Runs the helper in a pod that sees `vol` (a host directory) at /vol, with `app_flags`.
fn shocker(p: &PodEnv, handle: &str, app_flags: &[&str]) -> common::Run {
    let ex = common::example("shocker");
    let vol = p.v.path("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let ex_vol = format!(
        "--volume=ex,kind=host,source={},readOnly=true",
        ex.parent().unwrap().display()
    );
    let host_vol = format!(
        "--volume=v,kind=host,source={},readOnly=true",
        vol.display()
    );
    let mut args = vec!["run", "--rm", &ex_vol, &host_vol, &p.image];
    args.extend_from_slice(&[
        "--mount=volume=ex,target=/ex",
        "--mount=volume=v,target=/vol",
    ]);
    args.extend_from_slice(app_flags);
    args.extend_from_slice(&["--exec", "/ex/shocker", "--", "/vol", handle]);
    p.run(&args)
}

#[test]
fn open_by_handle_at_is_refused_even_with_cap_dac_read_search() {
    let p = PodEnv::new();
    // A host file beside the volume, never shared with the pod.
    let secret = p.v.path("secret");
    std::fs::write(&secret, "HOST-SECRET").unwrap();
    let handle = host_handle(&secret);

    for caps in [
        "--caps-retain=CAP_DAC_READ_SEARCH",
        "--caps-retain=CAP_DAC_READ_SEARCH,CAP_SYS_ADMIN,CAP_DAC_OVERRIDE",
    ] {
        let r = shocker(&p, &handle, &[caps]);
        assert!(r.status.success(), "{r}");
        assert!(
            !r.stdout.contains("HOST-SECRET"),
            "the pod read a host file:\n{r}"
        );
        assert!(
            r.stdout.contains("refused: Operation not permitted"),
            "open_by_handle_at was not refused by seccomp ({caps}):\n{r}"
        );
    }

    // The attack itself works on this host when an operator's own profile allows the
    // call by name: so the refusal above is the filter's doing.
    let r = shocker(
        &p,
        &handle,
        &[
            "--caps-retain=CAP_DAC_READ_SEARCH",
            "--seccomp=mode=retain,@docker/default-whitelist,open_by_handle_at",
        ],
    );
    assert!(r.stdout.contains("read: HOST-SECRET"), "{r}");
}
