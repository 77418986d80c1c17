// rkt's v1alpha API, from the vendored proto (proto/v1alpha/api.proto, unchanged), with
// Debian's protoc (scripts/deps): no network at build time.
fn main() {
    println!("cargo:rerun-if-changed=proto/v1alpha/api.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/v1alpha/api.proto"], &["proto"])
        .expect("compiling proto/v1alpha/api.proto (is protoc installed? scripts/deps)");
}
