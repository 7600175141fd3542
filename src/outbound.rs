//! Outbound safety of push notifications (server-side request forgery).
//!
//! A push-notification URL comes from a caller, so the agent must not become a way into the
//! network it runs in. A [`PushPolicy`] decides where notifications may go:
//!
//! - **Scheme**: `https` only, unless [`PushPolicy::allow_http`].
//! - **Addresses**: every address a URL's host names is checked; loopback, private,
//!   link-local, unique-local, shared (CGNAT), multicast, reserved and unspecified addresses
//!   ([`is_internal`]: `127.0.0.0/8`, `::1`, `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
//!   `169.254.0.0/16` including the cloud metadata address `169.254.169.254`, `100.64.0.0/10`,
//!   `0.0.0.0/8`, `224.0.0.0/3`, `::`, `fc00::/7`, `fe80::/10`, `ff00::/8`, and the IPv4 forms
//!   embedded in IPv6: `::ffff:a.b.c.d`, `::a.b.c.d`, `64:ff9b::a.b.c.d`) are refused unless
//!   they fall in one of [`PushPolicy::allow`]'s networks.
//! - **When**: a URL whose host is an IP literal is refused when the config is created
//!   (CreateTaskPushNotificationConfig, or inline in SendMessage: INVALID_ARGUMENT on its
//!   `url` field); every URL is checked again at every delivery, after DNS resolution, by the
//!   delivery client's resolver: the connection goes only to an address that passed the
//!   check, so a name that changes its answer between check and connect (DNS rebinding) gains
//!   nothing. A refused delivery is logged (without the URL's path, query or credentials) and
//!   counted (`switchyard_push_deliveries_total{outcome="refused"}`); it is not retried.
//! - The delivery client follows no redirects (a 3xx answer is a failed delivery) and uses no
//!   proxy from the environment (a proxy would resolve the name itself).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

pub use ipnet::IpNet;

/// Where push notifications may be delivered ([`crate::ServeConfig::push_policy`]). The
/// default is strict: `https` only, no internal address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushPolicy {
    /// Whether `http://` URLs are accepted (the payload and the token then travel in clear).
    /// Default false. Agent binaries: `--push-allow-http` / `<AGENT>_PUSH_ALLOW_HTTP=true`.
    pub allow_http: bool,
    /// Networks allowed although [`is_internal`] (e.g. `127.0.0.0/8` for a receiver on the
    /// same host, `10.1.2.0/24` for one in the cluster). Empty by default. Agent binaries:
    /// `--push-allow-network CIDR` (repeatable) / `<AGENT>_PUSH_ALLOW_NETWORKS=CIDR,CIDR`.
    pub allow: Vec<IpNet>,
}

/// Why a push-notification URL or address was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an absolute `http(s)` URL with a host.
    #[error("is not an absolute http(s) URL with a host")]
    Malformed,
    /// `http://` while the policy wants `https`.
    #[error("must use https (plain http is not allowed by this agent's push policy)")]
    Http,
    /// The address (literal, or one the host name resolved to) is internal and not allowed.
    #[error(
        "{0} is a loopback, private, link-local or otherwise internal address, which this \
         agent's push policy does not allow"
    )]
    Internal(IpAddr),
    /// The host name resolved to no address at all.
    #[error("the host name resolved to no address")]
    Unresolved,
}

impl PushPolicy {
    /// A policy for tests and local development: `http` and every address allowed.
    pub fn allow_all() -> Self {
        Self {
            allow_http: true,
            allow: vec![
                IpNet::V4("0.0.0.0/0".parse().expect("valid")),
                IpNet::V6("::/0".parse().expect("valid")),
            ],
        }
    }

    /// Checks one address: internal addresses only inside [`allow`](Self::allow).
    ///
    /// # Errors
    /// [`Refused::Internal`].
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if !is_internal(ip) {
            return Ok(());
        }
        let canonical = canonical(ip);
        if self
            .allow
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&canonical))
        {
            return Ok(());
        }
        Err(Refused::Internal(ip))
    }

    /// Checks what can be checked of a URL without DNS: its scheme, and its host when it is
    /// an IP literal. Returns the host name when it still needs resolving.
    ///
    /// # Errors
    /// [`Refused::Malformed`], [`Refused::Http`], [`Refused::Internal`].
    pub fn check_url(&self, url: &str) -> Result<Option<String>, Refused> {
        let url = reqwest::Url::parse(url.trim()).map_err(|_| Refused::Malformed)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(Refused::Http),
            _ => return Err(Refused::Malformed),
        }
        let host = url.host_str().ok_or(Refused::Malformed)?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(ip).map(|()| None),
            Err(_) => Ok(Some(host.to_owned())),
        }
    }
}

/// Whether `ip` is internal: loopback, private, link-local, unique-local, shared, multicast,
/// reserved, unspecified or broadcast, including IPv4 addresses embedded in IPv6 (mapped,
/// compatible, NAT64).
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

/// The IPv4 address embedded in an IPv6 one (`::ffff:a.b.c.d`, `::a.b.c.d` except `::` and
/// `::1`, `64:ff9b::a.b.c.d`), else `ip` itself.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = Ipv4Addr::from_bits(v6.to_bits() as u32);
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return IpAddr::V4(embedded);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(embedded);
    }
    ip
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || a == 0 // 0.0.0.0/8 "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 shared (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0.0/24 protocol assignments
        || (a == 198 && (18..20).contains(&b)) // 198.18.0.0/15 benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || (first & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (first & 0xffc0) == 0xfe80 // fe80::/10 link local
        || (first & 0xffc0) == 0xfec0 // fec0::/10 site local (deprecated)
        || (first & 0xff00) == 0xff00 // multicast
}

/// The DNS resolver of the delivery client: the system resolver (`getaddrinfo`, so
/// `/etc/hosts` and `localhost` count), keeping only the addresses the policy allows.
struct Filtering(Arc<PushPolicy>);

impl reqwest::dns::Resolve for Filtering {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if kept.is_empty() {
                let e = refused.unwrap_or(Refused::Unresolved);
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of push deliveries under `policy`: filtering resolver, no redirects, no
/// proxy, 5 s connect timeout.
pub(crate) fn client(policy: Arc<PushPolicy>) -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Filtering(policy))
        .build()
        .expect("the TLS provider is installed and the builder takes no fallible settings")
}

/// `url` without credentials, path or query (`scheme://host:port`), for logs and errors.
pub(crate) fn origin(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "<malformed url>".to_owned(),
    }
}

/// Whether `e` (from sending a request) was caused by the policy refusing every address.
pub(crate) fn refused_by_resolver(e: &reqwest::Error) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn internal_addresses_are_recognised_in_every_form() {
        for s in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_internal(ip(s)), "{s} is internal");
        }
        for s in [
            "8.8.8.8",
            "172.32.0.1",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_host() {
        let strict = PushPolicy::default();
        assert_eq!(
            strict.check_url("https://example.com/hook"),
            Ok(Some("example.com".into()))
        );
        assert_eq!(
            strict.check_url("http://example.com/hook"),
            Err(Refused::Http)
        );
        assert_eq!(
            strict.check_url("https://[::ffff:10.0.0.1]/x"),
            Err(Refused::Internal(ip("::ffff:10.0.0.1")))
        );
        assert_eq!(
            strict.check_url("https://169.254.169.254/latest"),
            Err(Refused::Internal(ip("169.254.169.254")))
        );
        assert_eq!(strict.check_url("ftp://x/"), Err(Refused::Malformed));
        let local = PushPolicy {
            allow_http: true,
            allow: vec!["127.0.0.0/8".parse().expect("net")],
        };
        assert_eq!(local.check_url("http://127.0.0.1:9/hook"), Ok(None));
        assert_eq!(local.check_url("http://[::ffff:127.0.0.1]:9/"), Ok(None));
        assert!(local.check_url("http://10.0.0.1/").is_err());
        assert_eq!(
            PushPolicy::allow_all().check_url("http://10.0.0.1/"),
            Ok(None)
        );
    }

    #[test]
    fn origins_hide_credentials_paths_and_queries() {
        assert_eq!(
            origin("https://user:pw@hooks.example.com:8443/p/secret?token=abc"),
            "https://hooks.example.com:8443"
        );
    }
}
