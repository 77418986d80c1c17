//! Every fuzz target, replayed from its corpus and regressions and then mutated for
//! `VESSEL_FUZZ_SECONDS` (default 2) each: what CI runs. Longer, coverage-guided runs:
//! `scripts/fuzz`.

fn run(name: &str) {
    let target = fuzz::TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let outcome = fuzz::run(target, fuzz::budget_from_env());
    eprintln!("fuzz {name}: {outcome}");
    assert!(outcome.executions > outcome.replayed as u64 || fuzz::budget_from_env().is_zero());
}

#[test]
fn every_target_has_a_test() {
    let source = include_str!("main.rs");
    for t in fuzz::TARGETS {
        assert!(
            source.contains(&format!("fn {}()", t.name)),
            "target {} has no test here",
            t.name
        );
    }
}

#[test]
fn appc_image_manifest() {
    run("appc_image_manifest");
}

#[test]
fn appc_pod_manifest() {
    run("appc_pod_manifest");
}

#[test]
fn oci_manifest_and_index() {
    run("oci_manifest_and_index");
}

#[test]
fn oci_config() {
    run("oci_config");
}

#[test]
fn docker_archive_manifest() {
    run("docker_archive_manifest");
}

#[test]
fn tar_entries() {
    run("tar_entries");
}

#[test]
fn flags() {
    run("flags");
}

#[test]
fn registry_auth() {
    run("registry_auth");
}

#[test]
fn openpgp_armor() {
    run("openpgp_armor");
}

#[test]
fn cni_result() {
    run("cni_result");
}
