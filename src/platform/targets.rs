//! The SSRF guard: which addresses a webhook may reach (checked at registration and again at
//! every delivery attempt), and a bound on the host lookups that checking takes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::webhooks::TIMEOUT;
use crate::domain::ports::{Refusal, TargetGuard};
use crate::domain::webhook::Target;

/// Whether a webhook may send to `ip`: public unicast only. Loopback, private (10/8,
/// 172.16/12, 192.168/16), shared (100.64/10), link-local (169.254/16, with the cloud metadata
/// address), unspecified, broadcast, multicast, reserved and documentation ranges are refused;
/// for IPv6 also ::1, ::, fc00::/7 (fd00::/8), fe80::/10, fec0::/10, ff00::/8, and any
/// IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address whose IPv4 part is refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            // IPv4-compatible (::/96, which also holds :: and ::1) and NAT64 (64:ff9b::/96).
            if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
                return public_v4(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return public_v4(embedded(s[1], s[2]));
            }
            !(v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && (s[1] == 0x0db8 || s[1] == 0))
                || (s[0] == 0x0100 && s[1..4] == [0; 3]))
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] >= 240
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18))
}

/// Most host lookups running at once. A lookup is `getaddrinfo` on a blocking thread, which
/// nothing can cancel: a name whose servers never answer holds its thread for the resolver's own
/// timeouts. Unbounded, registrations of such names could fill tokio's blocking pool, which
/// password hashing also runs on.
pub const MAX_LOOKUPS: usize = 16;

/// Resolves a target's host and checks every address it resolves to. At most `MAX_LOOKUPS`
/// lookups run at once; a check that finds no free slot within `TIMEOUT` is `Busy`, and one
/// whose lookup takes longer than `TIMEOUT` is `unresolvable` (its slot stays taken until the
/// lookup ends).
pub struct AddressGuard {
    /// Loopback and private targets allowed (`POLYPORT_WEBHOOK_ALLOW_PRIVATE`, development).
    allow_private: bool,
    slots: Arc<Semaphore>,
    resolve: Resolve,
    wait: Duration,
}

/// Turns a host and port into addresses (blocking).
type Resolve = Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync>;

impl AddressGuard {
    /// The system resolver, `MAX_LOOKUPS` at once, `TIMEOUT` per check.
    pub fn new(allow_private: bool) -> Self {
        let system: Resolve = Arc::new(|host, port| (host, port).to_socket_addrs().map(Iterator::collect));
        Self::with_resolver(allow_private, MAX_LOOKUPS, TIMEOUT, system)
    }

    fn with_resolver(allow_private: bool, slots: usize, wait: Duration, resolve: Resolve) -> Self {
        Self { allow_private, slots: Arc::new(Semaphore::new(slots)), resolve, wait }
    }

    async fn lookup(&self, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let slot = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        let Ok(Ok(slot)) = slot else { return Err(Refusal::Busy) };
        let (resolve, host, port) = (self.resolve.clone(), target.host.clone(), target.port);
        let lookup = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            resolve(&host, port)
        });
        match tokio::time::timeout_at(deadline, lookup).await {
            Ok(Ok(Ok(addrs))) if !addrs.is_empty() => Ok(addrs),
            _ => Err(Refusal::Issue("unresolvable")),
        }
    }
}

#[async_trait]
impl TargetGuard for AddressGuard {
    async fn check(&self, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs = self.lookup(target).await?;
        // One refused address refuses the host: a name that mixes public and private answers
        // is how rebinding attacks start.
        if !self.allow_private && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(Refusal::Issue("address_not_allowed"));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "fd00:ec2::254",
        ] {
            assert!(!is_public(refused.parse().unwrap()), "{refused} must be refused");
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(allowed.parse().unwrap()), "{allowed} must be allowed");
        }
    }

    fn target(host: &str) -> Target {
        crate::domain::webhook::parse_target(&format!("https://{host}/hook")).unwrap()
    }

    #[tokio::test]
    async fn host_lookups_run_a_bounded_number_at_once_and_a_check_without_a_slot_is_busy() {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(std::sync::Mutex::new(held));
        let resolve: Resolve = {
            let (running, most) = (running.clone(), most.clone());
            Arc::new(move |_, port| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // A resolver that does not answer until the test says so.
                let _ = held.lock().unwrap().recv_timeout(Duration::from_secs(10));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(vec![SocketAddr::from(([93, 184, 216, 34], port))])
            })
        };
        let guard = Arc::new(AddressGuard::with_resolver(false, 4, Duration::from_millis(300), resolve));
        let checks: Vec<_> = (0..12)
            .map(|i| {
                let guard = guard.clone();
                tokio::spawn(async move { guard.check(&target(&format!("slow{i}.example"))).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for check in checks {
            outcomes.push(check.await.unwrap());
        }
        // Four lookups took the slots and outlived the wait; the other eight found none.
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Err(Refusal::Busy))).count(), 8, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Err(Refusal::Issue("unresolvable")))).count(), 4);
        for _ in 0..500 {
            if running.load(Ordering::SeqCst) == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(most.load(Ordering::SeqCst), 4, "never more lookups than slots");
        // The slots come back only when the lookups end, and then serve new checks.
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        let answered = tokio::spawn({
            let guard = guard.clone();
            async move { guard.check(&target("fast.example")).await }
        });
        release.send(()).unwrap();
        assert_eq!(answered.await.unwrap().map(|a| a.len()), Ok(1));
        assert!(most.load(Ordering::SeqCst) <= 4);
    }

    #[tokio::test]
    async fn a_host_resolving_to_any_private_address_is_refused() {
        let resolve: Resolve = Arc::new(|_, port| {
            Ok(vec![SocketAddr::from(([93, 184, 216, 34], port)), SocketAddr::from(([10, 0, 0, 1], port))])
        });
        let guard = AddressGuard::with_resolver(false, 1, Duration::from_secs(1), resolve.clone());
        assert_eq!(guard.check(&target("mixed.example")).await, Err(Refusal::Issue("address_not_allowed")));
        let allowed = AddressGuard::with_resolver(true, 1, Duration::from_secs(1), resolve);
        assert_eq!(allowed.check(&target("mixed.example")).await.map(|a| a.len()), Ok(2));
    }
}
