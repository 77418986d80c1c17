//! A kvm pod's network interfaces (docs/architecture.md, "kvm", "The network").
//!
//! On the host, in the pod's network namespace after CNI's ADD (`wire`): each interface
//! a plugin made (`eth0`, ...) gets a tap device beside it, joined by two tc `mirred`
//! redirects (whatever arrives on one leaves by the other), and is described to the
//! guest as the plugins left it: name, MAC, MTU, addresses and routes. QEMU gets the
//! taps as virtio-net devices with the same MACs. In the guest (`configure`), PID 1
//! finds each device by its MAC, gives it the interface's name and sets the addresses
//! and routes, so the apps see the interface CNI made. The addresses stay on the host's
//! side too (CNI's DEL reads them there), where nothing reaches them: every frame is
//! redirected at ingress, before the namespace's own stack would see it.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirror, TcActionMirrorOption, TcActionOption,
    TcActionType, TcAttribute, TcFilterU32Option, TcHandle, TcMessage, TcMirror,
    TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::kvm::netlink::{Netlink, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};

/// One interface of the pod, as the guest recreates it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNic {
    /// Its name in the pod (`eth0`).
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Addresses with their prefix lengths.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Routes of the main table through it, in the order they are to be added.
    pub routes: Vec<GuestRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestRoute {
    /// None: the default route of the gateway's family.
    pub destination: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub scope: u8,
    pub protocol: u8,
    pub metric: Option<u32>,
    pub v6: bool,
}

impl GuestNic {
    /// `52:54:00:12:34:56`, as QEMU's `mac=` takes it.
    pub fn mac_text(&self) -> String {
        mac_text(&self.mac)
    }

    /// `eth0 (52:54:00:12:34:56)`, for messages.
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.mac_text())
    }
}

fn mac_text(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The tap device that stands in for interface `k` in the pod's namespace.
fn tap_name(k: usize) -> String {
    format!("vessel-tap{k}")
}

/// An interface of the namespace.
struct Link {
    index: u32,
    name: String,
    mac: Vec<u8>,
    mtu: u32,
}

fn links(nl: &mut Netlink) -> Result<Vec<Link>> {
    let mut out = Vec::new();
    for m in nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .ctx("listing the pod's interfaces")?
    {
        let RouteNetlinkMessage::NewLink(l) = m else {
            continue;
        };
        if l.header.flags.contains(LinkFlags::Loopback)
            || l.header.link_layer_type != LinkLayerType::Ether
        {
            continue;
        }
        let mut link = Link {
            index: l.header.index,
            name: String::new(),
            mac: Vec::new(),
            mtu: 1500,
        };
        for a in l.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Address(m) => link.mac = m,
                LinkAttribute::Mtu(m) => link.mtu = m,
                _ => {}
            }
        }
        out.push(link);
    }
    Ok(out)
}

/// On the host, in the pod's network namespace once its networks are up: a tap per
/// interface, joined to it, and the interfaces as the guest is to recreate them. The taps'
/// descriptors are QEMU's (`-netdev tap,fd=`), in the same order.
pub fn wire() -> Result<Vec<(GuestNic, OwnedFd)>> {
    let mut nl = Netlink::open().ctx("a netlink socket in the pod's namespace")?;
    let mut links = links(&mut nl)?;
    links.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for (k, link) in links.iter().enumerate() {
        let what = || format!("the pod's interface {}", link.name);
        let mac: [u8; 6] = link
            .mac
            .as_slice()
            .try_into()
            .map_err(|_| Error::msg(what(), "no ethernet address"))?;
        let name = tap_name(k);
        let tap = open_tap(&name).with_ctx(|| format!("{}: tap device {name}", what()))?;
        let tap_index = index_of(&name).with_ctx(|| format!("tap device {name}"))?;
        set_up(&mut nl, tap_index, link.mtu).with_ctx(|| format!("tap device {name}: up"))?;
        for (from, to) in [(link.index, tap_index), (tap_index, link.index)] {
            redirect(&mut nl, from, to)
                .with_ctx(|| format!("{}: tc mirred between it and {name}", what()))?;
        }
        let nic = GuestNic {
            name: link.name.clone(),
            mac,
            mtu: link.mtu,
            addresses: addresses(&mut nl, link.index).with_ctx(what)?,
            routes: routes(&mut nl, link.index).with_ctx(what)?,
        };
        out.push((nic, tap));
    }
    Ok(out)
}

/// A tap device of that name, its frames with virtio's header (as QEMU's own taps are).
fn open_tap(name: &str) -> std::io::Result<OwnedFd> {
    const TUNSETIFF: libc::c_ulong = 0x400454ca;
    const IFF_VNET_HDR: libc::c_short = 0x4000;
    // SAFETY: open, then an ioctl on a zeroed ifreq whose name fits (checked).
    unsafe {
        let fd = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut req: libc::ifreq = std::mem::zeroed();
        if name.len() >= req.ifr_name.len() {
            return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (i, b) in name.bytes().enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short | IFF_VNET_HDR;
        if libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(fd)
    }
}

fn index_of(name: &str) -> std::io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: a valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(std::io::Error::last_os_error()),
        i => Ok(i),
    }
}

fn set_up(nl: &mut Netlink, index: u32, mtu: u32) -> std::io::Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m.attributes.push(LinkAttribute::Mtu(mtu));
    nl.request(RouteNetlinkMessage::SetLink(m), 0)
}

/// `tc qdisc add dev FROM ingress` and `tc filter add dev FROM parent ffff: protocol all
/// u32 match u32 0 0 action mirred egress redirect dev TO`.
fn redirect(nl: &mut Netlink, from: u32, to: u32) -> std::io::Result<()> {
    let mut q = TcMessage::default();
    q.header.index = from as i32;
    q.header.handle = TcHandle {
        major: 0xffff,
        minor: 0,
    };
    q.header.parent = TcHandle::INGRESS;
    q.attributes.push(TcAttribute::Kind("ingress".into()));
    nl.request(
        RouteNetlinkMessage::NewQueueDiscipline(q),
        NLM_F_CREATE | NLM_F_EXCL,
    )?;
    let mut sel = TcU32Selector::default();
    sel.flags = TcU32SelectorFlags::Terminal;
    sel.nkeys = 1;
    sel.keys.push(TcU32Key::default());
    let mut mirror = TcMirror::default();
    mirror.generic.action = TcActionType::Stolen;
    mirror.eaction = TcMirrorActionType::EgressRedir;
    mirror.ifindex = to;
    let mut action = TcAction::default();
    action.tab = 1;
    action.attributes = vec![
        TcActionAttribute::Kind(TcActionMirror::KIND.into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
            mirror,
        ))]),
    ];
    let mut f = TcMessage::default();
    f.header.index = from as i32;
    f.header.parent = TcHandle {
        major: 0xffff,
        minor: 0,
    };
    // Priority 1, protocol ETH_P_ALL (in network order).
    f.header.info = (1 << 16) | u32::from((libc::ETH_P_ALL as u16).to_be());
    f.attributes.push(TcAttribute::Kind("u32".into()));
    f.attributes.push(TcAttribute::Options(vec![
        TcOption::U32(TcFilterU32Option::Selector(sel)),
        TcOption::U32(TcFilterU32Option::Action(vec![action])),
    ]));
    nl.request(
        RouteNetlinkMessage::NewTrafficFilter(f),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

fn addresses(nl: &mut Netlink, index: u32) -> std::io::Result<Vec<(IpAddr, u8)>> {
    let mut out = Vec::new();
    for m in nl.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))? {
        let RouteNetlinkMessage::NewAddress(a) = m else {
            continue;
        };
        if a.header.index != index || a.header.scope != AddressScope::Universe {
            continue;
        }
        let (mut local, mut address) = (None, None);
        for attr in a.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                _ => {}
            }
        }
        if let Some(ip) = local.or(address) {
            out.push((ip, a.header.prefix_len));
        }
    }
    Ok(out)
}

fn routes(nl: &mut Netlink, index: u32) -> std::io::Result<Vec<GuestRoute>> {
    let mut out = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut q = RouteMessage::default();
        q.header.address_family = family;
        for m in nl.dump(RouteNetlinkMessage::GetRoute(q))? {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let mut route = GuestRoute {
                destination: None,
                gateway: None,
                scope: r.header.scope.into(),
                protocol: r.header.protocol.into(),
                metric: None,
                v6: family == AddressFamily::Inet6,
            };
            let (mut oif, mut table) = (None, u32::from(r.header.table));
            for a in r.attributes {
                match a {
                    RouteAttribute::Destination(d) => {
                        route.destination =
                            ip_of(&d).map(|ip| (ip, r.header.destination_prefix_length))
                    }
                    RouteAttribute::Gateway(g) => route.gateway = ip_of(&g),
                    RouteAttribute::Oif(i) => oif = Some(i),
                    RouteAttribute::Priority(p) => route.metric = Some(p),
                    RouteAttribute::Table(t) => table = t,
                    _ => {}
                }
            }
            let link_local =
                |ip: &IpAddr| matches!(ip, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80);
            if oif != Some(index)
                || table != u32::from(RouteHeader::RT_TABLE_MAIN)
                || r.header.kind != RouteType::Unicast
                || route
                    .destination
                    .as_ref()
                    .is_some_and(|(ip, _)| link_local(ip))
            {
                continue;
            }
            out.push(route);
        }
    }
    // Routes to the link first: a gateway must be reachable when its route is added.
    out.sort_by_key(|r| r.gateway.is_some());
    Ok(out)
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// In the guest, once virtio_net is loaded: each interface recreated on the device
/// with its MAC (named, sized, up, addressed, routed). Loopback is the pod init's.
pub fn configure(nics: &[GuestNic]) -> Result<()> {
    if nics.is_empty() {
        return Ok(());
    }
    let mut nl = Netlink::open().ctx("a netlink socket")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let found = loop {
        let links = links(&mut nl)?;
        let found: Vec<Option<u32>> = nics
            .iter()
            .map(|n| links.iter().find(|l| l.mac == n.mac).map(|l| l.index))
            .collect();
        if found.iter().all(|f| f.is_some()) {
            break found;
        }
        if std::time::Instant::now() > deadline {
            let missing: Vec<String> = nics
                .iter()
                .zip(&found)
                .filter(|(_, f)| f.is_none())
                .map(|(n, _)| n.label())
                .collect();
            return Err(Error::msg(
                "the pod's network in the virtual machine",
                format!("no network device for {}", missing.join(", ")),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // The kernel named the devices in its own order, so a device may hold the name another
    // interface is to take: each first takes a name nobody wants.
    for (k, (nic, index)) in nics.iter().zip(&found).enumerate() {
        rename(&mut nl, index.expect("found"), &format!("vessel-tmp{k}"))
            .with_ctx(|| format!("the pod's interface {}: naming it", nic.label()))?;
    }
    for (nic, index) in nics.iter().zip(found) {
        let index = index.expect("found");
        let what = || format!("the pod's interface {}", nic.label());
        rename(&mut nl, index, &nic.name).with_ctx(|| format!("{}: naming it", what()))?;
        set_up(&mut nl, index, nic.mtu).with_ctx(|| format!("{}: up", what()))?;
        for (ip, len) in &nic.addresses {
            let mut a = AddressMessage::default();
            a.header.family = family(ip);
            a.header.prefix_len = *len;
            a.header.index = index;
            a.header.scope = AddressScope::Universe;
            if ip.is_ipv6() {
                a.header.flags = AddressHeaderFlags::Nodad;
            }
            a.attributes.push(AddressAttribute::Local(*ip));
            a.attributes.push(AddressAttribute::Address(*ip));
            // The plugins' routes come next, as they made them (ptp removes the prefix's).
            a.attributes
                .push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
            nl.request(
                RouteNetlinkMessage::NewAddress(a),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .with_ctx(|| format!("{}: address {ip}/{len}", what()))?;
        }
        for r in &nic.routes {
            let mut m = RouteMessage::default();
            m.header.address_family = if r.v6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            };
            m.header.table = RouteHeader::RT_TABLE_MAIN;
            m.header.protocol = RouteProtocol::from(r.protocol);
            m.header.scope = RouteScope::from(r.scope);
            m.header.kind = RouteType::Unicast;
            if let Some((ip, len)) = r.destination {
                m.header.destination_prefix_length = len;
                m.attributes
                    .push(RouteAttribute::Destination(RouteAddress::from(ip)));
            }
            if let Some(g) = r.gateway {
                m.attributes
                    .push(RouteAttribute::Gateway(RouteAddress::from(g)));
            }
            m.attributes.push(RouteAttribute::Oif(index));
            if let Some(p) = r.metric {
                m.attributes.push(RouteAttribute::Priority(p));
            }
            nl.request(
                RouteNetlinkMessage::NewRoute(m),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .with_ctx(|| {
                let dst = r
                    .destination
                    .map(|(ip, len)| format!("{ip}/{len}"))
                    .unwrap_or_else(|| "default".into());
                format!("{}: route {dst}", what())
            })?;
        }
    }
    Ok(())
}

/// Names the (down) link `index`.
fn rename(nl: &mut Netlink, index: u32, name: &str) -> std::io::Result<()> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    nl.request(RouteNetlinkMessage::SetLink(m), 0)
}

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_read_as_qemu_takes_them() {
        let nic = GuestNic {
            mac: [0x0a, 0x58, 0xac, 0x10, 0x1c, 0x05],
            ..Default::default()
        };
        assert_eq!(nic.mac_text(), "0a:58:ac:10:1c:05");
        assert!(tap_name(9).len() < libc::IFNAMSIZ);
    }

    #[test]
    fn interfaces_take_their_names_whatever_the_kernel_called_them() {
        assert!(
            rustix::process::geteuid().is_root(),
            "run as root: it makes a network namespace"
        );
        // In a network namespace of this thread's own: two devices the "kernel" named in
        // the opposite order of the interfaces they are to become.
        std::thread::spawn(|| {
            // SAFETY: unshare with a namespace flag only, on this thread alone.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let ip = |args: &str| {
                let status = std::process::Command::new("ip")
                    .args(args.split(' '))
                    .status()
                    .unwrap();
                assert!(status.success(), "ip {args}");
            };
            ip("link add eth0 address 0a:58:00:00:00:01 type veth peer name eth1 address 0a:58:00:00:00:02");
            let nic = |name: &str, last: u8| GuestNic {
                name: name.into(),
                mac: [0x0a, 0x58, 0, 0, 0, last],
                mtu: 1400,
                ..Default::default()
            };
            let nics = [nic("eth1", 1), nic("eth0", 2)];
            configure(&nics).unwrap();
            let mut nl = Netlink::open().unwrap();
            let now = links(&mut nl).unwrap();
            for n in &nics {
                let l = now.iter().find(|l| l.mac == n.mac).unwrap();
                assert_eq!((l.name.as_str(), l.mtu), (n.name.as_str(), 1400));
            }
        })
        .join()
        .unwrap();
    }
}
