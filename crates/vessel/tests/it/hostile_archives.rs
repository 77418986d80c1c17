//! Hand-built malicious images, as OCI layers and as ACIs. Each is refused with an error
//! naming the image and the entry, or its hostile entry is neutralised; nothing outside
//! the store changes; the store stays sound (`image verify` passes) and the image that was
//! there before is still whole.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::aci::{aci_manifest, manifest_bytes, write_aci};
use common::compress::{gzip_bomb_tar, Compression};
use common::host::{unique_name, FileSnapshot, Sentinel, Victim, VictimDir, CLIMB};
use common::oci::{raw_image_layout, Layer};
use common::tar::TarWriter;
use common::{Run, StoreState, Vessel};

#[derive(Clone, Copy, Debug)]
enum Format {
    Oci,
    Aci,
}

use Format::{Aci, Oci};

impl Format {
    /// Where the root filesystem starts inside an archive of this format.
    fn root(self) -> &'static str {
        match self {
            Oci => "",
            Aci => "rootfs/",
        }
    }

    /// A one-layer image (gzip-compressed) of what `entries` writes; `entries` gets the
    /// prefix of the root filesystem. Returns the reference to fetch.
    fn image(self, v: &Vessel, entries: impl FnOnce(&mut TarWriter, &str)) -> String {
        self.image_from_tar(v, &self.tar(entries), Compression::Gzip)
    }

    fn tar(self, entries: impl FnOnce(&mut TarWriter, &str)) -> Vec<u8> {
        let mut t = TarWriter::new();
        if let Aci = self {
            t.file("manifest", &manifest_bytes("example.com/hostile"));
            t.dir("rootfs");
        }
        entries(&mut t, self.root());
        t.finish()
    }

    /// An image whose single layer (or whole ACI) is exactly these tar bytes.
    fn image_from_tar(self, v: &Vessel, tar: &[u8], compression: Compression) -> String {
        match self {
            Oci => {
                raw_image_layout(
                    &v.path(&unique_name("layout")),
                    &[Layer::new(tar, compression)],
                )
                .0
            }
            Aci => write_aci(
                &v.path(&format!("{}.aci", unique_name("hostile"))),
                tar,
                compression,
            )
            .path_str(),
        }
    }
}

/// A store that already holds a harmless image, so a hostile import can be shown to
/// leave it alone.
struct Guarded {
    v: Vessel,
    bystander: String,
    before: StoreState,
}

impl Guarded {
    fn new() -> Guarded {
        let v = Vessel::new();
        let tar = TarWriter::new()
            .dir("etc")
            .file("etc/bystander", b"still here")
            .finish();
        let (reference, _) =
            raw_image_layout(&v.path("bystander"), &[Layer::new(&tar, Compression::Gzip)]);
        let bystander = v.fetch(&reference);
        let before = v.state();
        Guarded {
            v,
            bystander,
            before,
        }
    }

    /// Fetches `image`, which must be refused with stderr naming the image and `needles`;
    /// the store must be exactly as before.
    fn refused(&self, image: &str, needles: &[&str]) -> Run {
        self.refused_with_env(image, &[], needles)
    }

    fn refused_with_env(&self, image: &str, env: &[(&str, &str)], needles: &[&str]) -> Run {
        let run = self.v.fetch_refused_with_env(image, env);
        eprintln!("refused as it should be: {}", run.stderr.trim());
        let run = run.stderr_names(needles);
        assert_names_image(&run, image);
        self.assert_store_as_before();
        run
    }

    /// Fetches `image`, which may be refused or accepted, as long as the store stays
    /// sound (and unchanged, if refused).
    fn refused_or_accepted(&self, image: &str) {
        let before = self.v.state();
        let run = self.v.run(&["fetch", "--insecure-options=image", image]);
        if run.status.success() {
            let id = run.stdout.trim();
            self.v.render(id);
        } else {
            let run = run.failure();
            assert_names_image(&run, image);
            assert_eq!(self.v.state(), before, "a refused import changed the store");
        }
        assert_eq!(
            self.v.tmp_entries(),
            Vec::<String>::new(),
            "an import left temporary files"
        );
        self.assert_sound();
    }

    fn assert_store_as_before(&self) {
        assert_eq!(
            self.v.state(),
            self.before,
            "a refused import changed the store"
        );
        assert_eq!(
            self.v.tmp_entries(),
            Vec::<String>::new(),
            "a refused import left temporary files"
        );
        self.assert_sound();
    }

    /// `image verify` passes and the image imported first still renders whole.
    fn assert_sound(&self) {
        self.v.assert_verify_clean();
        let rootfs = self.v.render(&self.bystander);
        assert_eq!(
            std::fs::read(rootfs.join("etc/bystander")).unwrap(),
            b"still here"
        );
    }

    /// Fetches `image`, which must be accepted (its hostile entries neutralised), and
    /// renders it; returns the rendered root.
    fn accepted(&self, image: &str) -> PathBuf {
        let id = self.v.fetch(image);
        assert_eq!(self.v.tmp_entries(), Vec::<String>::new());
        self.assert_sound();
        self.v.render(&id)
    }
}

/// The error names the image, once: its reference as given, or the file or directory in
/// it.
fn assert_names_image(run: &Run, image: &str) {
    let path = image
        .split_once(':')
        .filter(|(t, _)| ["oci", "oci-archive", "docker-archive"].contains(t))
        .map(|(_, rest)| rest)
        .unwrap_or(image);
    let path = path.split(':').next().unwrap();
    assert!(
        run.stderr.contains(image) || run.stderr.contains(path),
        "the error should name the image {image}:\n{run}"
    );
    assert!(
        run.stderr.matches(&format!("image {image}")).count() <= 1,
        "the error names the image more than once:\n{run}"
    );
}

/// The file at `rel` inside `root`, found without following any symlink on the way.
fn file_inside(root: &Path, rel: &str) -> Option<Vec<u8>> {
    let mut p = root.to_path_buf();
    for comp in rel.split('/') {
        p.push(comp);
        let m = std::fs::symlink_metadata(&p).ok()?;
        if m.file_type().is_symlink() {
            return None;
        }
    }
    std::fs::read(&p).ok()
}

// ---- names that climb out with `..` ----

fn dotdot_name_is_refused(format: Format) {
    let g = Guarded::new();
    let s = Sentinel::new("dotdot");
    let entry = format!("{}{}", format.root(), s.climbing());
    let image = format.image(&g.v, |t, root| {
        t.file(&format!("{root}etc/ok"), b"fine");
        t.file(&entry, b"escaped");
    });
    g.refused(&image, &[&entry, ".."]);
    s.assert_absent();
}

#[test]
fn oci_layer_with_dotdot_name_is_refused() {
    dotdot_name_is_refused(Oci);
}

#[test]
fn aci_with_dotdot_name_is_refused() {
    dotdot_name_is_refused(Aci);
}

fn dotdot_in_the_middle_of_a_name_is_refused(format: Format) {
    let g = Guarded::new();
    let s = Sentinel::new("middot");
    let entry = format!("{}usr/lib/{CLIMB}/tmp/{}", format.root(), s.name());
    let image = format.image(&g.v, |t, _| {
        t.file(&entry, b"escaped");
    });
    g.refused(&image, &[&entry]);
    s.assert_absent();
}

#[test]
fn oci_layer_with_dotdot_inside_a_name_is_refused() {
    dotdot_in_the_middle_of_a_name_is_refused(Oci);
}

#[test]
fn aci_with_dotdot_inside_a_name_is_refused() {
    dotdot_in_the_middle_of_a_name_is_refused(Aci);
}

// ---- absolute names ----

#[test]
fn oci_layer_with_absolute_name_lands_inside_the_root() {
    let g = Guarded::new();
    let s = Sentinel::new("absolute");
    let image = Oci.image(&g.v, |t, _| {
        t.file(&s.absolute(), b"inside");
    });
    let rootfs = g.accepted(&image);
    s.assert_absent();
    assert_eq!(
        file_inside(&rootfs, &format!("tmp/{}", s.name())).as_deref(),
        Some(&b"inside"[..])
    );
}

#[test]
fn aci_with_absolute_name_under_rootfs_lands_inside_the_root() {
    let g = Guarded::new();
    let s = Sentinel::new("absolute-aci");
    let image = Aci.image(&g.v, |t, _| {
        t.file(&format!("/rootfs{}", s.absolute()), b"inside");
    });
    let rootfs = g.accepted(&image);
    s.assert_absent();
    assert_eq!(
        file_inside(&rootfs, &format!("tmp/{}", s.name())).as_deref(),
        Some(&b"inside"[..])
    );
}

#[test]
fn aci_with_absolute_name_outside_rootfs_is_refused() {
    let g = Guarded::new();
    let s = Sentinel::new("absolute-outside");
    let image = Aci.image(&g.v, |t, _| {
        t.file(&s.absolute(), b"escaped");
    });
    g.refused(&image, &[&s.absolute()]);
    s.assert_absent();
}

// ---- a symlink to / (or climbing to it), then a file under it ----

fn file_under_a_symlink_to_root_stays_inside(format: Format) {
    let g = Guarded::new();
    let (abs, rel) = (
        Sentinel::new("via-root-link"),
        Sentinel::new("via-climbing-link"),
    );
    let image = format.image(&g.v, |t, root| {
        t.symlink(&format!("{root}evil"), "/");
        t.file(&format!("{root}evil/tmp/{}", abs.name()), b"through /");
        t.symlink(&format!("{root}up"), CLIMB);
        t.file(&format!("{root}up/tmp/{}", rel.name()), b"through ..");
    });
    let rootfs = g.accepted(&image);
    abs.assert_absent();
    rel.assert_absent();
    assert_eq!(
        file_inside(&rootfs, &format!("tmp/{}", abs.name())).as_deref(),
        Some(&b"through /"[..])
    );
    assert_eq!(
        file_inside(&rootfs, &format!("tmp/{}", rel.name())).as_deref(),
        Some(&b"through .."[..])
    );
}

#[test]
fn oci_layer_writing_through_a_symlink_to_root_stays_inside() {
    file_under_a_symlink_to_root_stays_inside(Oci);
}

#[test]
fn aci_writing_through_a_symlink_to_root_stays_inside() {
    file_under_a_symlink_to_root_stays_inside(Aci);
}

fn directory_symlink_swapped_then_written_stays_inside(format: Format) {
    // A directory, then a symlink to /tmp replacing it, then a file under the same name.
    let g = Guarded::new();
    let s = Sentinel::new("swapped");
    let image = format.image(&g.v, |t, root| {
        t.dir(&format!("{root}tmp"));
        t.dir(&format!("{root}data"));
        t.file(&format!("{root}data/a"), b"a");
        t.symlink(&format!("{root}data"), "/tmp");
        t.file(&format!("{root}data/{}", s.name()), b"after the swap");
    });
    let rootfs = g.accepted(&image);
    s.assert_absent();
    assert_eq!(
        file_inside(&rootfs, &format!("tmp/{}", s.name())).as_deref(),
        Some(&b"after the swap"[..])
    );
}

#[test]
fn oci_layer_swapping_a_directory_for_a_symlink_stays_inside() {
    directory_symlink_swapped_then_written_stays_inside(Oci);
}

#[test]
fn aci_swapping_a_directory_for_a_symlink_is_refused() {
    // An ACI names each path once: the second `rootfs/data` is refused before anything
    // is written through it (aci_duplicates.rs covers duplicates as such).
    let g = Guarded::new();
    let s = Sentinel::new("aci-swapped");
    let image = Aci.image(&g.v, |t, root| {
        t.dir(&format!("{root}data"));
        t.symlink(&format!("{root}data"), "/tmp");
        t.file(&format!("{root}data/{}", s.name()), b"after the swap");
    });
    g.refused(&image, &["rootfs/data", "twice"]);
    s.assert_absent();
}

fn file_under_a_dangling_symlink_is_refused_or_contained(format: Format) {
    // The link points at /tmp, which the image does not have: the host's /tmp must not
    // stand in for it.
    let g = Guarded::new();
    let s = Sentinel::new("dangling");
    let image = format.image(&g.v, |t, root| {
        t.symlink(&format!("{root}hosttmp"), "/tmp");
        t.file(&format!("{root}hosttmp/{}", s.name()), b"dangling");
    });
    g.refused_or_accepted(&image);
    s.assert_absent();
}

#[test]
fn oci_layer_writing_through_a_dangling_symlink_stays_inside() {
    file_under_a_dangling_symlink_is_refused_or_contained(Oci);
}

#[test]
fn aci_writing_through_a_dangling_symlink_stays_inside() {
    file_under_a_dangling_symlink_is_refused_or_contained(Aci);
}

// ---- hard links to host files ----

fn hardlink_to_host_shadow_is_refused(format: Format, target: &str) {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let entry = format!("{}stolen-shadow", format.root());
    let image = format.image(&g.v, |t, _| {
        t.hardlink(&entry, target);
    });
    g.refused(&image, &["stolen-shadow"]);
    shadow.assert_unchanged();
}

#[test]
fn oci_layer_hardlink_to_absolute_etc_shadow_is_refused() {
    hardlink_to_host_shadow_is_refused(Oci, "/etc/shadow");
}

#[test]
fn oci_layer_hardlink_climbing_to_etc_shadow_is_refused() {
    hardlink_to_host_shadow_is_refused(Oci, &format!("{CLIMB}/etc/shadow"));
}

#[test]
fn aci_hardlink_to_absolute_etc_shadow_is_refused() {
    hardlink_to_host_shadow_is_refused(Aci, "/etc/shadow");
}

#[test]
fn aci_hardlink_climbing_to_etc_shadow_is_refused() {
    hardlink_to_host_shadow_is_refused(Aci, &format!("rootfs/{CLIMB}/etc/shadow"));
}

fn hardlink_through_a_symlink_to_etc_shadow_is_refused(format: Format) {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let image = format.image(&g.v, |t, root| {
        t.symlink(&format!("{root}hostroot"), "/");
        t.hardlink(
            &format!("{root}stolen-shadow"),
            &format!("{root}hostroot/etc/shadow"),
        );
    });
    g.refused(&image, &["stolen-shadow"]);
    shadow.assert_unchanged();
}

#[test]
fn oci_layer_hardlink_through_a_symlink_to_etc_shadow_is_refused() {
    hardlink_through_a_symlink_to_etc_shadow_is_refused(Oci);
}

#[test]
fn aci_hardlink_through_a_symlink_to_etc_shadow_is_refused() {
    hardlink_through_a_symlink_to_etc_shadow_is_refused(Aci);
}

#[test]
fn hardlink_to_a_file_inside_the_layer_is_kept() {
    let g = Guarded::new();
    let image = Oci.image(&g.v, |t, _| {
        t.file("etc/original", b"shared inode");
        t.hardlink("etc/alias", "etc/original");
    });
    let rootfs = g.accepted(&image);
    assert_eq!(
        std::fs::read(rootfs.join("etc/alias")).unwrap(),
        b"shared inode"
    );
}

// ---- a symlink planted in one layer and written through in the next ----

#[test]
fn oci_symlink_planted_in_one_layer_is_not_followed_by_the_next() {
    let g = Guarded::new();
    let (abs, rel) = (Sentinel::new("planted-abs"), Sentinel::new("planted-rel"));
    let lower = TarWriter::new()
        .symlink("escape", "/tmp")
        .symlink("up", &format!("{CLIMB}/tmp"))
        .finish();
    let upper = TarWriter::new()
        .file(&format!("escape/{}", abs.name()), b"layer two")
        .file(&format!("up/{}", rel.name()), b"layer two")
        .finish();
    let (reference, _) = raw_image_layout(
        &g.v.path("planted"),
        &[
            Layer::new(&lower, Compression::Gzip),
            Layer::new(&upper, Compression::Gzip),
        ],
    );
    let rootfs = g.accepted(&reference);
    abs.assert_absent();
    rel.assert_absent();
    for (s, link) in [(&abs, "escape"), (&rel, "up")] {
        let inside = file_inside(&rootfs, &format!("{link}/{}", s.name()))
            .or_else(|| file_inside(&rootfs, &format!("tmp/{}", s.name())));
        assert_eq!(
            inside.as_deref(),
            Some(&b"layer two"[..]),
            "{link}: the upper layer's file is lost"
        );
    }
}

#[test]
fn aci_symlink_planted_by_a_dependency_is_not_followed_by_the_image() {
    let g = Guarded::new();
    let (abs, rel) = (
        Sentinel::new("dep-planted-abs"),
        Sentinel::new("dep-planted-rel"),
    );
    let dep = common::aci::raw_aci(&manifest_bytes("example.com/planter"), |t| {
        t.symlink("rootfs/escape", "/tmp");
        t.symlink("rootfs/up", &format!("{CLIMB}/tmp"));
    });
    let dep = write_aci(&g.v.path("planter.aci"), &dep, Compression::Gzip);
    g.v.fetch(&dep.path_str());
    let mut manifest = aci_manifest("example.com/writer", "1.0");
    manifest["dependencies"] = serde_json::json!([{"imageName": "example.com/planter", "labels": [{"name": "version", "value": "1.0"}]}]);
    let app = common::aci::raw_aci(&serde_json::to_vec(&manifest).unwrap(), |t| {
        t.file(&format!("rootfs/escape/{}", abs.name()), b"the app");
        t.file(&format!("rootfs/up/{}", rel.name()), b"the app");
    });
    let app = write_aci(&g.v.path("writer.aci"), &app, Compression::Gzip);
    g.accepted(&app.path_str());
    abs.assert_absent();
    rel.assert_absent();
}

// ---- whiteouts naming paths outside the root ----

#[test]
fn oci_whiteout_climbing_out_of_the_root_is_refused() {
    let g = Guarded::new();
    let victim = Victim::new("whiteout-climb");
    let entry = format!("{CLIMB}/tmp/.wh.{}", victim.name());
    let image = Oci.image(&g.v, |t, _| {
        t.file(&entry, b"");
    });
    g.refused(&image, &[&entry]);
    victim.assert_intact();
}

#[test]
fn oci_absolute_whiteout_deletes_nothing_on_the_host() {
    let g = Guarded::new();
    let victim = Victim::new("whiteout-abs");
    let image = Oci.image(&g.v, |t, _| {
        t.file("etc/kept", b"k");
        t.file(&format!("/tmp/.wh.{}", victim.name()), b"");
    });
    let rootfs = g.accepted(&image);
    victim.assert_intact();
    assert!(rootfs.join("etc/kept").is_file());
}

#[test]
fn oci_whiteout_through_a_planted_symlink_deletes_nothing_on_the_host() {
    let g = Guarded::new();
    let victim = Victim::new("whiteout-link");
    let lower = TarWriter::new()
        .symlink("hosttmp", "/tmp")
        .symlink("uptmp", &format!("{CLIMB}/tmp"))
        .finish();
    let upper = TarWriter::new()
        .file(&format!("hosttmp/.wh.{}", victim.name()), b"")
        .file(&format!("uptmp/.wh.{}", victim.name()), b"")
        .finish();
    let (reference, _) = raw_image_layout(
        &g.v.path("wh"),
        &[
            Layer::new(&lower, Compression::Gzip),
            Layer::new(&upper, Compression::Gzip),
        ],
    );
    g.accepted(&reference);
    victim.assert_intact();
}

#[test]
fn oci_whiteout_of_dot_or_dotdot_is_refused() {
    let g = Guarded::new();
    for entry in ["etc/.wh..", "etc/.wh...", ".wh.."] {
        let image = Oci.image(&g.v, |t, _| {
            t.dir("etc");
            t.file(entry, b"");
        });
        g.refused(&image, &[entry]);
    }
}

#[test]
fn aci_file_named_like_a_whiteout_is_an_ordinary_file() {
    // ACIs have no whiteouts: `.wh.NAME` is a file like any other.
    let g = Guarded::new();
    let victim = Victim::new("aci-whiteout");
    let name = format!(".wh.{}", victim.name());
    let image = Aci.image(&g.v, |t, _| {
        t.file(&format!("rootfs/tmp/{name}"), b"just a file");
    });
    let rootfs = g.accepted(&image);
    victim.assert_intact();
    assert_eq!(
        file_inside(&rootfs, &format!("tmp/{name}")).as_deref(),
        Some(&b"just a file"[..])
    );
}

#[test]
fn aci_whiteout_named_outside_rootfs_is_refused() {
    let g = Guarded::new();
    let victim = Victim::new("aci-whiteout-outside");
    let entry = format!("/tmp/.wh.{}", victim.name());
    let image = Aci.image(&g.v, |t, _| {
        t.file(&entry, b"");
    });
    g.refused(&image, &[&entry]);
    victim.assert_intact();
}

#[test]
fn oci_whiteout_through_a_symlink_in_the_same_layer_deletes_nothing_on_the_host() {
    let g = Guarded::new();
    let victim = Victim::new("whiteout-same-layer");
    let image = Oci.image(&g.v, |t, _| {
        t.symlink("hosttmp", "/tmp");
        t.file(&format!("hosttmp/.wh.{}", victim.name()), b"");
    });
    g.refused_or_accepted(&image);
    victim.assert_intact();
}

#[test]
fn oci_opaque_marker_through_a_symlink_empties_nothing_on_the_host() {
    // With a victim directory, not /tmp: a failure here must not wipe the machine's /tmp.
    let g = Guarded::new();
    let victim = VictimDir::new("opaque-link");
    let link = TarWriter::new().symlink("vd", &victim.absolute()).finish();
    let opaque = TarWriter::new()
        .file("vd/.wh..wh..opq", b"")
        .file("vd/new", b"new")
        .finish();
    let (across, _) = raw_image_layout(
        &g.v.path("opaque-across"),
        &[
            Layer::new(&link, Compression::Gzip),
            Layer::new(&opaque, Compression::Gzip),
        ],
    );
    g.refused_or_accepted(&across);
    victim.assert_intact();
    let same = Oci.image(&g.v, |t, _| {
        t.symlink("vd", &victim.absolute());
        t.file("vd/.wh..wh..opq", b"");
    });
    g.refused_or_accepted(&same);
    victim.assert_intact();
}

// ---- device nodes ----

fn device_nodes_are_skipped(format: Format) {
    let g = Guarded::new();
    let image = format.image(&g.v, |t, root| {
        t.dir(&format!("{root}dev"));
        t.char_device(&format!("{root}dev/mem-clone"), 1, 1);
        t.block_device(&format!("{root}dev/disk-clone"), 8, 0);
        t.file(&format!("{root}etc/ok"), b"fine");
    });
    let id = g.v.fetch(&image);
    g.assert_sound();
    let rootfs = g.v.render(&id);
    for dev in ["dev/mem-clone", "dev/disk-clone"] {
        assert!(
            rootfs.join(dev).symlink_metadata().is_err(),
            "{dev} was created from the image"
        );
    }
    assert!(rootfs.join("etc/ok").is_file());
    // Nowhere in the store either.
    let found = find_devices(&g.v.store().join("layers"));
    assert!(
        found
            .iter()
            .all(|p| !p.ends_with("mem-clone") && !p.ends_with("disk-clone")),
        "device nodes in the store: {found:?}"
    );
}

/// Character and block devices under `dir`, whiteouts (0/0) excluded.
fn find_devices(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(find_devices(&e.path()));
        } else if (ft.is_char_device() || ft.is_block_device()) && e.metadata().unwrap().rdev() != 0
        {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn oci_layer_device_nodes_are_skipped() {
    device_nodes_are_skipped(Oci);
}

#[test]
fn aci_device_nodes_are_skipped() {
    device_nodes_are_skipped(Aci);
}

#[test]
fn skipped_device_nodes_are_reported_on_stderr() {
    let g = Guarded::new();
    let image = Oci.image(&g.v, |t, _| {
        t.char_device("dev-mem-clone", 1, 1);
    });
    let run =
        g.v.run(&["fetch", "--insecure-options=image", &image])
            .success();
    assert!(
        run.stderr.contains("dev-mem-clone"),
        "the skipped device should be named as a warning:\n{run}"
    );
}

// ---- setuid files ----

fn setuid_bits_are_kept_in_a_root_only_store(format: Format) {
    let g = Guarded::new();
    let image = format.image(&g.v, |t, root| {
        t.dir(&format!("{root}bin"));
        t.file_with_mode(&format!("{root}bin/suid"), b"#!/bin/sh\n", 0o4755);
        t.file_with_mode(&format!("{root}bin/sgid"), b"#!/bin/sh\n", 0o2755);
    });
    let rootfs = g.accepted(&image);
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/sgid")).unwrap().mode() & 0o7777,
        0o2755
    );
    let store_mode = std::fs::metadata(g.v.store()).unwrap().mode() & 0o7777;
    assert_eq!(
        store_mode, 0o700,
        "setuid files in the store must be out of reach of other users"
    );
}

#[test]
fn oci_layer_setuid_files_are_kept_in_a_root_only_store() {
    setuid_bits_are_kept_in_a_root_only_store(Oci);
}

#[test]
fn aci_setuid_files_are_kept_in_a_root_only_store() {
    setuid_bits_are_kept_in_a_root_only_store(Aci);
}

// ---- decompression bombs and huge sizes ----

/// 1 GiB of zeros gzip-compressed to about 1 MiB: past 64 MiB it expands over 200 times.
const BOMB_BYTES: u64 = 1 << 30;

#[test]
fn oci_layer_gzip_bomb_is_refused() {
    let g = Guarded::new();
    let bomb = gzip_bomb_tar(&TarWriter::new(), "zeros", BOMB_BYTES);
    let mut layout = common::oci::RawLayout::create(&g.v.path("bomb"));
    let layer = layout.put_blob(&bomb);
    // The diff_id cannot be known without inflating the bomb: a plausible one will do,
    // since the refusal must come before the end.
    let diff_id = common::digest::sha256_oci(b"not inflated");
    let config = common::oci::image_config_for("amd64", vec![diff_id.clone()]);
    let stored = common::oci::StoredLayer {
        descriptor: serde_json::json!({"mediaType": Compression::Gzip.oci_media_type(), "digest": layer, "size": bomb.len()}),
        diff_id,
    };
    let image = layout.add_image_of_stored(&[stored], &config);
    let reference = layout.tag(&image.descriptor, "bomb");
    g.refused(&reference, &["decompression bomb"]);
}

#[test]
fn aci_gzip_bomb_is_refused() {
    let g = Guarded::new();
    let mut prefix = TarWriter::new();
    prefix
        .file("manifest", &manifest_bytes("example.com/bomb"))
        .dir("rootfs");
    let bomb = gzip_bomb_tar(&prefix, "rootfs/zeros", BOMB_BYTES);
    let path = g.v.path("bomb.aci");
    std::fs::write(&path, bomb).unwrap();
    g.refused(path.to_str().unwrap(), &["decompression bomb"]);
}

fn layer_beyond_the_size_cap_is_refused(format: Format) {
    let g = Guarded::new();
    let entry = format!("{}oversized-file", format.root());
    let image = format.image(&g.v, |t, _| {
        t.file(&entry, &vec![7u8; 2 << 20]);
    });
    g.refused_with_env(
        &image,
        &[("VESSEL_MAX_LAYER_BYTES", "1048576")],
        &["oversized-file", "1048576"],
    );
}

#[test]
fn oci_layer_beyond_vessel_max_layer_bytes_is_refused() {
    layer_beyond_the_size_cap_is_refused(Oci);
}

#[test]
fn aci_beyond_vessel_max_layer_bytes_is_refused() {
    layer_beyond_the_size_cap_is_refused(Aci);
}

// ---- truncated archives ----

/// A tar whose last file is cut off in the middle of its data.
fn tar_cut_inside_a_file(format: Format) -> Vec<u8> {
    let full = format.tar(|t, root| {
        t.file(&format!("{root}etc/whole"), b"complete");
        t.file(&format!("{root}cut-short"), &vec![b'x'; 64 * 1024]);
    });
    let end_of_data = full.len() - 1024; // before the two end-of-archive blocks
    full[..end_of_data - 40 * 1024].to_vec()
}

fn truncated_plain_tar_is_refused(format: Format) {
    let g = Guarded::new();
    let image = format.image_from_tar(&g.v, &tar_cut_inside_a_file(format), Compression::None);
    g.refused(&image, &["cut-short"]);
}

#[test]
fn oci_layer_truncated_inside_a_file_is_refused() {
    truncated_plain_tar_is_refused(Oci);
}

#[test]
fn aci_truncated_inside_a_file_is_refused() {
    truncated_plain_tar_is_refused(Aci);
}

fn truncated_gzip_stream_is_refused(format: Format) {
    let g = Guarded::new();
    let tar = format.tar(|t, root| {
        let mut noise = vec![0u8; 256 * 1024];
        for (i, b) in noise.iter_mut().enumerate() {
            *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
        }
        t.file(&format!("{root}noise"), &noise);
    });
    let gz = Compression::Gzip.compress(&tar);
    let cut = &gz[..gz.len() / 2];
    let image = match format {
        // The blob digest is the truncated stream's own, so only the truncation is wrong.
        Oci => {
            let mut layout = common::oci::RawLayout::create(&g.v.path("cutgz"));
            let digest = layout.put_blob(cut);
            let stored = common::oci::StoredLayer {
                descriptor: serde_json::json!({"mediaType": Compression::Gzip.oci_media_type(), "digest": digest, "size": cut.len()}),
                diff_id: common::digest::sha256_oci(&tar),
            };
            let config = common::oci::image_config_for("amd64", vec![stored.diff_id.clone()]);
            let image = layout.add_image_of_stored(&[stored], &config);
            layout.tag(&image.descriptor, "cut")
        }
        Aci => {
            let path = g.v.path("cut.aci");
            std::fs::write(&path, cut).unwrap();
            path.to_string_lossy().into_owned()
        }
    };
    g.refused(&image, &["gzip", "truncated"]);
}

#[test]
fn oci_layer_with_truncated_gzip_is_refused() {
    truncated_gzip_stream_is_refused(Oci);
}

#[test]
fn aci_with_truncated_gzip_is_refused() {
    truncated_gzip_stream_is_refused(Aci);
}

#[test]
fn tar_header_claiming_more_data_than_the_archive_holds_is_refused() {
    for format in [Oci, Aci] {
        let g = Guarded::new();
        let mut t = TarWriter::new();
        if let Aci = format {
            t.file("manifest", &manifest_bytes("example.com/liar"))
                .dir("rootfs");
        }
        let mut h = common::tar::Header::new(b'0', &format!("{}liar", format.root()));
        h.size = 7 << 30; // 7 GiB announced, a few bytes given
        t.header(&h).data(b"a few bytes");
        let image = format.image_from_tar(&g.v, &t.unterminated(), Compression::Gzip);
        g.refused(&image, &["liar"]);
    }
}

// ---- manifests that are not JSON or break the schema ----

#[test]
fn oci_manifest_that_is_not_json_is_refused() {
    let g = Guarded::new();
    let mut layout = common::oci::RawLayout::create(&g.v.path("notjson"));
    let desc = layout.add_manifest_bytes(b"{\"schemaVersion\": 2, this is not json");
    let reference = layout.tag(&desc, "latest");
    g.refused(&reference, &["manifest"]);
}

/// A change that breaks a valid manifest, for schema tests.
type Breakage = fn(&mut serde_json::Value);

/// A layout whose manifest is the valid one with `change` applied.
fn layout_with_changed_manifest(v: &Vessel, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let layer = Layer::new(
        &TarWriter::new().file("f", b"f").finish(),
        Compression::Gzip,
    );
    let mut layout = common::oci::RawLayout::create(&v.path(&unique_name("schema")));
    let good = layout.add_image(std::slice::from_ref(&layer));
    let path = layout.blob_path(good.descriptor["digest"].as_str().unwrap());
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    change(&mut manifest);
    let desc = layout.add_manifest_bytes(&serde_json::to_vec(&manifest).unwrap());
    layout.tag(&desc, "latest")
}

#[test]
fn oci_manifests_breaking_the_schema_are_refused() {
    let g = Guarded::new();
    let breakages: [(&str, Breakage); 6] = [
        ("schemaVersion 1", |m| m["schemaVersion"] = 1.into()),
        ("layers not a list", |m| m["layers"] = "layer.tar".into()),
        ("no config", |m| {
            m.as_object_mut().unwrap().remove("config");
        }),
        ("config digest not a digest", |m| {
            m["config"]["digest"] = "sha256:xyz".into()
        }),
        ("unknown digest algorithm", |m| {
            m["layers"][0]["digest"] = "md5:d41d8cd98f00b204e9800998ecf8427e".into()
        }),
        ("not a container image", |m| {
            m["config"]["mediaType"] = "application/vnd.example.helm.chart+json".into()
        }),
    ];
    for (what, change) in breakages {
        let reference = layout_with_changed_manifest(&g.v, change);
        let run = g.v.fetch_refused(&reference);
        assert!(
            run.stderr.contains(&reference),
            "{what}: the error does not name the image:\n{run}"
        );
        g.assert_store_as_before();
    }
}

#[test]
fn oci_descriptor_digest_that_is_a_path_is_refused() {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let reference = layout_with_changed_manifest(&g.v, |m| {
        m["layers"][0]["digest"] = format!("sha256:{CLIMB}/etc/shadow").into();
    });
    g.refused(&reference, &[]);
    shadow.assert_unchanged();
}

#[test]
fn oci_config_that_is_not_json_or_not_linux_is_refused() {
    let g = Guarded::new();
    let layer = Layer::new(
        &TarWriter::new().file("f", b"f").finish(),
        Compression::Gzip,
    );
    for (tag, config) in [
        ("notjson", b"{\"architecture\": \"amd64\",".to_vec()),
        (
            "windows",
            serde_json::to_vec(&{
                let mut c = common::oci::image_config("amd64", std::slice::from_ref(&layer));
                c["os"] = "windows".into();
                c
            })
            .unwrap(),
        ),
        (
            "nodiffids",
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec(),
        ),
    ] {
        let mut layout = common::oci::RawLayout::create(&g.v.path(tag));
        let stored = layout.put_layer(&layer);
        let config_digest = layout.put_blob(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": common::oci::MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": common::oci::CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len()},
            "layers": [stored.descriptor],
        });
        let desc = layout.add_manifest_bytes(&serde_json::to_vec(&manifest).unwrap());
        let reference = layout.tag(&desc, tag);
        g.refused(&reference, &[]);
    }
}

#[test]
fn oci_layout_whose_index_is_not_json_is_refused() {
    let g = Guarded::new();
    let layout = common::oci::RawLayout::create(&g.v.path("badindex"));
    std::fs::write(layout.dir().join("index.json"), b"[[[").unwrap();
    g.refused(&layout.reference("latest"), &["index.json"]);
}

fn aci_with_manifest(g: &Guarded, manifest: &[u8]) -> String {
    let tar = common::aci::raw_aci(manifest, |t| {
        t.file("rootfs/f", b"f");
    });
    write_aci(
        &g.v.path(&format!("{}.aci", unique_name("manifest"))),
        &tar,
        Compression::Gzip,
    )
    .path_str()
}

#[test]
fn aci_manifest_that_is_not_json_is_refused() {
    let g = Guarded::new();
    let image = aci_with_manifest(&g, b"acKind: ImageManifest\n");
    g.refused(&image, &["manifest"]);
}

#[test]
fn aci_manifests_breaking_the_schema_are_refused() {
    let g = Guarded::new();
    let breakages: [(&str, Breakage); 6] = [
        ("wrong acKind", |m| m["acKind"] = "PodManifest".into()),
        ("no acVersion", |m| {
            m.as_object_mut().unwrap().remove("acVersion");
        }),
        ("name not an AC name", |m| {
            m["name"] = "Not A Valid/Name!".into()
        }),
        ("no name", |m| {
            m.as_object_mut().unwrap().remove("name");
        }),
        ("exec not a list", |m| m["app"]["exec"] = "/bin/sh".into()),
        ("labels not a list", |m| {
            m["labels"] = serde_json::json!({"version": "1"})
        }),
    ];
    for (what, change) in breakages {
        let mut manifest = aci_manifest("example.com/schema", "1.0");
        change(&mut manifest);
        let image = aci_with_manifest(&g, &serde_json::to_vec(&manifest).unwrap());
        let run = g.v.fetch_refused(&image);
        assert!(
            run.stderr.contains(&image),
            "{what}: the error does not name the image:\n{run}"
        );
        g.assert_store_as_before();
    }
}

#[test]
fn aci_without_a_manifest_is_refused() {
    let g = Guarded::new();
    let mut t = TarWriter::new();
    t.dir("rootfs").file("rootfs/f", b"f");
    let image = Aci.image_from_tar(&g.v, &t.finish(), Compression::Gzip);
    g.refused(&image, &["manifest"]);
}

// ---- digests that do not match ----

#[test]
fn oci_layer_whose_blob_does_not_match_its_digest_is_refused() {
    let g = Guarded::new();
    let layer = Layer::new(
        &TarWriter::new().file("etc/motd", b"genuine").finish(),
        Compression::Gzip,
    );
    let mut layout = common::oci::RawLayout::create(&g.v.path("tampered"));
    let image = layout.add_image(std::slice::from_ref(&layer));
    // Swap the layer's content for another valid layer, keeping its name.
    let forged =
        Compression::Gzip.compress(&TarWriter::new().file("etc/motd", b"forged!").finish());
    let digest = layer.digest();
    layout.put_blob_as(digest.trim_start_matches("sha256:"), &forged);
    let reference = layout.tag(&image.descriptor, "latest");
    g.refused(&reference, &[&digest, "digest"]);
}

#[test]
fn oci_layer_whose_content_does_not_match_its_diff_id_is_refused() {
    let g = Guarded::new();
    let layer = Layer::new(
        &TarWriter::new().file("etc/motd", b"genuine").finish(),
        Compression::Gzip,
    );
    let other = common::digest::sha256_oci(b"some other tar");
    let mut layout = common::oci::RawLayout::create(&g.v.path("diffid"));
    let image = layout.add_image_with(
        std::slice::from_ref(&layer),
        &common::oci::image_config_for("amd64", vec![other.clone()]),
    );
    let reference = layout.tag(&image.descriptor, "latest");
    g.refused(&reference, &[&other]);
}

#[test]
fn oci_config_or_manifest_not_matching_its_digest_is_refused() {
    let g = Guarded::new();
    let layer = Layer::new(
        &TarWriter::new().file("f", b"f").finish(),
        Compression::Gzip,
    );
    for what in ["config", "manifest"] {
        let mut layout = common::oci::RawLayout::create(&g.v.path(what));
        let image = layout.add_image(std::slice::from_ref(&layer));
        let manifest_path = layout.blob_path(image.descriptor["digest"].as_str().unwrap());
        let target = match what {
            "config" => {
                let m: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
                layout.blob_path(m["config"]["digest"].as_str().unwrap())
            }
            _ => manifest_path,
        };
        let mut data = std::fs::read(&target).unwrap();
        data.extend_from_slice(b"\n\n");
        std::fs::write(&target, data).unwrap();
        let reference = layout.tag(&image.descriptor, "latest");
        g.refused(&reference, &["digest"]);
    }
}

#[test]
fn aci_dependency_whose_image_id_does_not_match_is_refused() {
    let g = Guarded::new();
    let dep = write_aci(
        &g.v.path("dep.aci"),
        &common::aci::raw_aci(&manifest_bytes("example.com/dep"), |t| {
            t.file("rootfs/dep", b"dep");
        }),
        Compression::Gzip,
    );
    g.v.fetch(&dep.path_str());
    let g_before = g.v.state();
    let wrong = format!("sha512-{}", "0".repeat(128));
    let mut manifest = aci_manifest("example.com/app", "1.0");
    manifest["dependencies"] =
        serde_json::json!([{"imageName": "example.com/dep", "imageID": wrong}]);
    let image = aci_with_manifest(&g, &serde_json::to_vec(&manifest).unwrap());
    g.v.fetch_refused(&image)
        .stderr_names(&[&image, "example.com/dep"]);
    assert_eq!(g.v.state(), g_before);
    g.assert_sound();
}

// ---- the archives images come in ----

#[test]
fn docker_archive_naming_members_outside_the_archive_is_refused() {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let climbing = format!("{CLIMB}/etc/shadow");
    let tar = common::oci::raw_docker_archive(&climbing, &[&climbing], "evil:latest", |_| {});
    let path = g.v.path("climbing-docker.tar");
    std::fs::write(&path, tar).unwrap();
    g.refused(&format!("docker-archive:{}", path.display()), &[]);
    shadow.assert_unchanged();
}

#[test]
fn docker_archive_whose_layer_is_a_symlink_to_a_host_file_is_refused() {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let config = serde_json::to_vec(&common::oci::image_config_for(
        "amd64",
        vec![common::digest::sha256_oci(b"x")],
    ))
    .unwrap();
    let tar = common::oci::raw_docker_archive("config.json", &["layer.tar"], "evil:latest", |t| {
        t.file("config.json", &config);
        t.symlink("layer.tar", "/etc/shadow");
    });
    let path = g.v.path("symlinked-docker.tar");
    std::fs::write(&path, tar).unwrap();
    g.refused(&format!("docker-archive:{}", path.display()), &[]);
    shadow.assert_unchanged();
}

#[test]
fn oci_layout_whose_blob_is_a_symlink_to_a_host_file_is_refused() {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let layer = Layer::new(
        &TarWriter::new().file("f", b"f").finish(),
        Compression::Gzip,
    );
    let mut layout = common::oci::RawLayout::create(&g.v.path("linkedblob"));
    let image = layout.add_image(std::slice::from_ref(&layer));
    let blob = layout.blob_path(&layer.digest());
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &blob).unwrap();
    let reference = layout.tag(&image.descriptor, "latest");
    g.refused(&reference, &[]);
    shadow.assert_unchanged();
}

// ---- writing through links at a host file, with a victim instead of /etc/shadow ----

fn hardlink_to_a_host_file_then_written_is_refused(format: Format) {
    let g = Guarded::new();
    let victim = Victim::new("hardlink-write");
    let entry = format!("{}overwrite-me", format.root());
    let image = format.image(&g.v, |t, _| {
        t.hardlink(&entry, &victim.path().to_string_lossy());
        t.file(&entry, b"written through the link");
    });
    g.refused(&image, &["overwrite-me"]);
    victim.assert_intact();
}

#[test]
fn oci_layer_hardlink_to_a_host_file_then_written_is_refused() {
    hardlink_to_a_host_file_then_written_is_refused(Oci);
}

#[test]
fn aci_hardlink_to_a_host_file_then_written_is_refused() {
    hardlink_to_a_host_file_then_written_is_refused(Aci);
}

fn file_over_a_symlink_to_a_host_file_replaces_the_link(format: Format) {
    let g = Guarded::new();
    let victim = Victim::new("symlink-write");
    let image = format.image(&g.v, |t, root| {
        t.symlink(&format!("{root}abs"), &victim.path().to_string_lossy());
        t.file(&format!("{root}abs"), b"replaced");
        t.symlink(
            &format!("{root}rel"),
            &format!("{CLIMB}{}", victim.path().display()),
        );
        t.file(&format!("{root}rel"), b"replaced");
    });
    let rootfs = g.accepted(&image);
    victim.assert_intact();
    for name in ["abs", "rel"] {
        assert_eq!(
            file_inside(&rootfs, name).as_deref(),
            Some(&b"replaced"[..]),
            "{name}"
        );
    }
}

#[test]
fn oci_layer_file_over_a_symlink_to_a_host_file_replaces_the_link() {
    file_over_a_symlink_to_a_host_file_replaces_the_link(Oci);
}

#[test]
fn aci_file_over_a_symlink_to_a_host_file_is_refused() {
    let g = Guarded::new();
    let victim = Victim::new("aci-symlink-write");
    let image = Aci.image(&g.v, |t, root| {
        t.symlink(&format!("{root}abs"), &victim.path().to_string_lossy());
        t.file(&format!("{root}abs"), b"replaced");
    });
    g.refused(&image, &["rootfs/abs", "twice"]);
    victim.assert_intact();
}

#[test]
fn oci_file_over_a_symlink_planted_by_a_lower_layer_replaces_the_link() {
    let g = Guarded::new();
    let victim = Victim::new("layer-symlink-write");
    let lower = TarWriter::new()
        .dir("etc")
        .symlink("etc/config", &victim.path().to_string_lossy())
        .finish();
    let upper = TarWriter::new()
        .dir("etc")
        .file("etc/config", b"upper layer")
        .finish();
    let (reference, _) = raw_image_layout(
        &g.v.path("planted-file"),
        &[
            Layer::new(&lower, Compression::Gzip),
            Layer::new(&upper, Compression::Gzip),
        ],
    );
    let rootfs = g.accepted(&reference);
    victim.assert_intact();
    assert_eq!(
        file_inside(&rootfs, "etc/config").as_deref(),
        Some(&b"upper layer"[..])
    );
}

#[test]
fn oci_layer_hardlink_to_a_symlink_at_a_host_file_cannot_write_it() {
    let g = Guarded::new();
    let victim = Victim::new("hardlinked-symlink");
    let image = Oci.image(&g.v, |t, _| {
        t.symlink("link", &victim.path().to_string_lossy());
        t.hardlink("hard", "link");
        t.file("hard", b"replaced");
    });
    g.refused_or_accepted(&image);
    victim.assert_intact();
}

fn directory_entry_over_a_symlink_leaves_the_host_directory_alone(format: Format) {
    let g = Guarded::new();
    let victim = VictimDir::new("dir-over-link");
    let image = format.image(&g.v, |t, root| {
        t.symlink(&format!("{root}d"), &victim.absolute());
        let mut h = common::tar::Header::new(b'5', &format!("{root}d"));
        h.mode = 0o777;
        h.uid = 1000;
        h.gid = 1000;
        h.mtime = 1;
        t.entry(h, &[]);
        t.file(&format!("{root}d/intruder"), b"inside");
    });
    let rootfs = g.accepted(&image);
    victim.assert_intact();
    assert_eq!(
        file_inside(&rootfs, "d/intruder").as_deref(),
        Some(&b"inside"[..])
    );
}

#[test]
fn oci_layer_directory_over_a_symlink_leaves_the_host_directory_alone() {
    directory_entry_over_a_symlink_leaves_the_host_directory_alone(Oci);
}

#[test]
fn aci_directory_over_a_symlink_is_refused() {
    let g = Guarded::new();
    let victim = VictimDir::new("aci-dir-over-link");
    let image = Aci.image(&g.v, |t, root| {
        t.symlink(&format!("{root}d"), &victim.absolute());
        t.dir(&format!("{root}d"));
        t.file(&format!("{root}d/intruder"), b"inside");
    });
    g.refused(&image, &["rootfs/d", "twice"]);
    victim.assert_intact();
}

fn root_replaced_by_a_symlink_is_refused_or_contained(format: Format) {
    let g = Guarded::new();
    let s = Sentinel::new("root-link");
    let image = format.image(&g.v, |t, root| {
        t.symlink(&format!("{root}./"), "/tmp");
        t.file(&format!("{root}{}", s.name()), b"through the root");
    });
    g.refused_or_accepted(&image);
    s.assert_absent();
}

#[test]
fn oci_layer_replacing_its_root_with_a_symlink_stays_inside() {
    root_replaced_by_a_symlink_is_refused_or_contained(Oci);
}

#[test]
fn aci_replacing_its_root_with_a_symlink_stays_inside() {
    root_replaced_by_a_symlink_is_refused_or_contained(Aci);
}

// ---- PAX headers ----

fn pax_path_climbing_out_is_refused(format: Format) {
    let g = Guarded::new();
    let s = Sentinel::new("pax-path");
    let hostile = format!("{}{}", format.root(), s.climbing());
    let image = format.image(&g.v, |t, root| {
        t.pax(&[("path", hostile.as_bytes())]);
        t.file(&format!("{root}harmless-name"), b"escaped");
    });
    g.refused(&image, &[&hostile]);
    s.assert_absent();
}

#[test]
fn oci_layer_pax_path_climbing_out_is_refused() {
    pax_path_climbing_out_is_refused(Oci);
}

#[test]
fn aci_pax_path_climbing_out_is_refused() {
    pax_path_climbing_out_is_refused(Aci);
}

#[test]
fn oci_layer_pax_linkpath_to_etc_shadow_is_refused() {
    let g = Guarded::new();
    let shadow = FileSnapshot::take(Path::new("/etc/shadow"));
    let image = Oci.image(&g.v, |t, _| {
        t.pax(&[("linkpath", b"/etc/shadow")]);
        t.hardlink("pax-stolen", "harmless-target");
    });
    g.refused(&image, &["pax-stolen"]);
    shadow.assert_unchanged();
}

#[test]
fn oci_layer_forged_opaque_xattr_is_dropped() {
    // overlayfs reads trusted.overlay.opaque; an image must not be able to set it.
    let g = Guarded::new();
    let lower = TarWriter::new()
        .dir("conf")
        .file("conf/lower", b"lower")
        .finish();
    let mut upper = TarWriter::new();
    upper
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("conf")
        .file("conf/upper", b"upper");
    let (reference, _) = raw_image_layout(
        &g.v.path("forged-opaque"),
        &[
            Layer::new(&lower, Compression::Gzip),
            Layer::new(&upper.finish(), Compression::Gzip),
        ],
    );
    let rootfs = g.accepted(&reference);
    assert_eq!(
        file_inside(&rootfs, "conf/lower").as_deref(),
        Some(&b"lower"[..]),
        "a forged opaque xattr hid the lower layer"
    );
    assert_eq!(
        file_inside(&rootfs, "conf/upper").as_deref(),
        Some(&b"upper"[..])
    );
}

#[test]
fn oci_layer_forged_overlay_whiteout_device_is_not_a_whiteout() {
    // In the store a whiteout is a 0/0 character device; one from an image is skipped.
    let g = Guarded::new();
    let lower = TarWriter::new()
        .dir("etc")
        .file("etc/keep", b"kept")
        .finish();
    let upper = TarWriter::new()
        .dir("etc")
        .char_device("etc/keep", 0, 0)
        .finish();
    let (reference, _) = raw_image_layout(
        &g.v.path("forged-whiteout"),
        &[
            Layer::new(&lower, Compression::Gzip),
            Layer::new(&upper, Compression::Gzip),
        ],
    );
    let rootfs = g.accepted(&reference);
    assert_eq!(
        file_inside(&rootfs, "etc/keep").as_deref(),
        Some(&b"kept"[..])
    );
}
