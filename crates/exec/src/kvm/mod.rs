//! The kvm stage1 flavour: each pod in a virtual machine of its own, run by QEMU
//! (docs/architecture.md, "Stage1 flavours"). The pod's init on the host (`host`) starts
//! QEMU with Debian's kernel and Vessel's initramfs (`initramfs`, `kernel`); inside, the
//! same binary is the guest's PID 1 (`guest`), which runs the pod's init code unchanged;
//! the two speak over one virtio-serial port (`frame`). The pod's CNI interfaces reach the
//! guest through taps joined to them by tc (`nic`, over `netlink`).

pub mod enter;
pub mod frame;
pub mod guest;
pub mod host;
pub mod initramfs;
pub mod kernel;
pub mod netlink;
pub mod nic;
