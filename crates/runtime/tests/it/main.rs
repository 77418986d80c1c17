//! The one integration test binary of vessel-runtime: every test drives the built binary
//! as containerd and podman do, with a --root and a bundle of its own. Root-only tests
//! fail (not pass) when not run as root.

mod kit;

mod bad_input;
mod containerd;
mod exec;
mod lifecycle;
mod podman;
mod propagation;
mod resources;
mod safety;
mod systemd;
