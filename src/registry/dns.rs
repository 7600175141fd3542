//! DNS discovery: `dns:///host:port` endpoints (gRPC name-resolution syntax), resolved with
//! [hickory](https://docs.rs/hickory-resolver) to every address (A and AAAA) and resolved
//! again on an interval, sooner when the records' TTL says so, and when a connection fails.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use hickory_resolver::{
    TokioResolver,
    config::{LookupIpStrategy, NameServerConfigGroup, ResolverConfig},
    name_server::TokioConnectionProvider,
};

use super::RegistryError;

/// Environment variable: the DNS server asked for `dns:///` endpoints, as `ip:port`
/// ([`DiscoveryConfig::nameserver`]).
pub const DNS_SERVER_ENV: &str = "SWITCHYARD_DNS_SERVER";

/// Environment variable: the longest time between two resolutions of a name, in seconds
/// ([`DiscoveryConfig::refresh_interval`]).
pub const DNS_REFRESH_ENV: &str = "SWITCHYARD_DNS_REFRESH_SECS";

/// The scheme of a discovered endpoint.
pub const DNS_SCHEME: &str = "dns:///";

/// How `dns:///` endpoints are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The DNS server asked (UDP, then TCP for truncated answers), e.g. `10.96.0.10:53`;
    /// `None` (the default) uses the system configuration (`/etc/resolv.conf`: nameservers,
    /// search domains, `ndots`).
    pub nameserver: Option<SocketAddr>,
    /// The longest time between two resolutions of a name. A record with a shorter TTL is
    /// resolved again when it expires, but not sooner than [`MIN_REFRESH`] (or this interval,
    /// when shorter). Default 30 s.
    pub refresh_interval: Duration,
}

/// The shortest time between two resolutions of a name (TTL 0 records, failing connections),
/// unless [`DiscoveryConfig::refresh_interval`] is shorter.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            nameserver: None,
            refresh_interval: Duration::from_secs(30),
        }
    }
}

impl DiscoveryConfig {
    /// The defaults, overridden by [`DNS_SERVER_ENV`] and [`DNS_REFRESH_ENV`] when set.
    ///
    /// # Errors
    /// [`RegistryError::Discovery`] for a value that is not an `ip:port` or a positive number
    /// of seconds.
    pub fn from_env() -> Result<Self, RegistryError> {
        let mut c = Self::default();
        if let Ok(v) = std::env::var(DNS_SERVER_ENV) {
            c.nameserver = Some(parse_nameserver(&v)?);
        }
        if let Ok(v) = std::env::var(DNS_REFRESH_ENV) {
            c.refresh_interval = parse_refresh(&v)?;
        }
        Ok(c)
    }

    /// The wait before the next resolution when the answer is valid until `valid_until`.
    pub(crate) fn next_refresh(&self, valid_until: Instant) -> Duration {
        let floor = MIN_REFRESH.min(self.refresh_interval);
        valid_until
            .saturating_duration_since(Instant::now())
            .clamp(floor, self.refresh_interval)
    }

    /// The shortest wait between two resolutions.
    pub(crate) fn min_refresh(&self) -> Duration {
        MIN_REFRESH.min(self.refresh_interval)
    }

    /// A resolver for this configuration, asking for A and AAAA records.
    pub(crate) fn resolver(&self) -> Result<TokioResolver, RegistryError> {
        let mut builder = match self.nameserver {
            Some(addr) => TokioResolver::builder_with_config(
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
                ),
                TokioConnectionProvider::default(),
            ),
            None => TokioResolver::builder_tokio().map_err(|e| {
                RegistryError::Discovery(format!("reading the system DNS configuration: {e}"))
            })?,
        };
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Never keep an answer past the refresh interval.
        opts.positive_max_ttl = Some(self.refresh_interval);
        opts.negative_max_ttl = Some(self.min_refresh());
        Ok(builder.build())
    }
}

fn parse_nameserver(v: &str) -> Result<SocketAddr, RegistryError> {
    v.parse::<SocketAddr>()
        .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| {
            RegistryError::Discovery(format!(
                "{DNS_SERVER_ENV}={v:?}: expected ip or ip:port, e.g. 10.96.0.10:53"
            ))
        })
}

fn parse_refresh(v: &str) -> Result<Duration, RegistryError> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| (Duration::from_millis(1)..=Duration::from_secs(1_000_000_000)).contains(d))
        .ok_or_else(|| {
            RegistryError::Discovery(format!(
                "{DNS_REFRESH_ENV}={v:?}: expected a number of seconds from 0.001 to 1e9"
            ))
        })
}

/// A `dns:///host:port` endpoint as `(host, port)`; `None` for anything else. The authority
/// form (`dns://server/host:port`) is not supported: the server comes from
/// [`DiscoveryConfig::nameserver`].
pub(crate) fn parse(endpoint: &str) -> Option<(&str, u16)> {
    let rest = endpoint.strip_prefix(DNS_SCHEME)?;
    let (host, port) = rest.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    valid.then_some((host, port))
}

/// Every address of `host`, with `port`, and until when the answer is valid. A name with no
/// records resolves to no address.
///
/// # Errors
/// The resolver's error for anything but "no records" (timeouts, SERVFAIL, …): the caller
/// keeps the addresses it had.
pub(crate) async fn resolve(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
) -> Result<(Vec<SocketAddr>, Instant), String> {
    match resolver.lookup_ip(host).await {
        Ok(lookup) => {
            let mut addrs: Vec<SocketAddr> =
                lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
            addrs.sort();
            addrs.dedup();
            Ok((addrs, lookup.valid_until()))
        }
        Err(e) if e.is_no_records_found() => Ok((Vec::new(), Instant::now())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_endpoints_parse_and_others_do_not() {
        assert_eq!(
            parse("dns:///echo-headless.ns.svc.cluster.local:50051"),
            Some(("echo-headless.ns.svc.cluster.local", 50051))
        );
        assert_eq!(parse("dns:///[::1]:7"), Some(("::1", 7)));
        for bad in [
            "echo:1",
            "dns:///echo",
            "dns:///echo:0",
            "dns://8.8.8.8/echo:1",
            "dns:///:1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn refresh_honours_the_ttl_within_bounds() {
        let c = DiscoveryConfig::default();
        let now = Instant::now();
        assert_eq!(c.next_refresh(now), MIN_REFRESH, "TTL 0 waits the minimum");
        let in_5s = c.next_refresh(now + Duration::from_secs(5));
        assert!(in_5s <= Duration::from_secs(5) && in_5s > Duration::from_secs(4));
        assert_eq!(
            c.next_refresh(now + Duration::from_secs(3600)),
            c.refresh_interval
        );
        let fast = DiscoveryConfig {
            refresh_interval: Duration::from_millis(100),
            ..c
        };
        assert_eq!(fast.next_refresh(now), Duration::from_millis(100));
    }

    #[test]
    fn environment_values_are_checked() {
        assert_eq!(
            parse_nameserver("10.0.0.1").expect("ip"),
            "10.0.0.1:53".parse().expect("addr")
        );
        assert!(parse_nameserver("dns.local:53").is_err());
        assert_eq!(
            parse_refresh("0.5").expect("secs"),
            Duration::from_millis(500)
        );
        for bad in ["0", "-1", "soon", "inf", "1e-12", "1e20"] {
            let e = parse_refresh(bad).expect_err(bad);
            assert!(e.to_string().contains("from 0.001 to 1e9"), "{e}");
        }
    }
}
