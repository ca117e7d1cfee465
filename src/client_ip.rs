//! Who the client is: the TCP peer, unless the peer is one of
//! `http.trusted_proxies`, in which case its forwarding header names the
//! client. Worked out once per request, at the edge ([`around`]), and read
//! by everything that keys on or records a client address ([`of`]): the
//! rate limiter, sign-in throttling, audit events and sessions.
//!
//! `X-Forwarded-For` wins when a request carries both it and `Forwarded`
//! (RFC 7239): nearly every proxy appends to the former, and a proxy
//! appends to one header while passing the other through from the client
//! untouched. A proxy that writes only `Forwarded` must drop a client's
//! `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use poem::http::HeaderMap;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::config::TrustedProxies;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const FORWARDED: &str = "forwarded";

/// The request's client address, put in its extensions by [`around`].
/// `None` when the peer has no IP address (not a TCP connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

/// The client address of a request. Without [`around`] in front (a
/// request built inside the process) it is the TCP peer: headers are never
/// read without knowing which proxies to believe.
pub fn of(req: &Request) -> Option<IpAddr> {
    match req.extensions().get::<ClientIp>() {
        Some(ClientIp(ip)) => *ip,
        None => peer(req),
    }
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.remote_addr()
        .as_socket_addr()
        .map(|addr| addr.ip().to_canonical())
}

/// Middleware: resolves the client address once, before anything reads it.
pub async fn around<E: Endpoint>(
    trusted: Arc<TrustedProxies>,
    endpoint: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let ip = resolve(peer(&req), req.headers(), &trusted);
    req.extensions_mut().insert(ClientIp(ip));
    endpoint.call(req).await.map(IntoResponse::into_response)
}

/// The client behind `peer`. Only a trusted peer's forwarding header is
/// read; it is walked from the right (each proxy appends the address it
/// was connected from), past the trusted proxies, to the first address
/// that is not one: everything left of it was written by that client and
/// proves nothing. When every address is a trusted proxy, the left-most
/// is the client. An entry that names no address (`unknown`, an
/// obfuscated `_name`, garbage) met on the way, or a header that cannot be
/// read, gives the peer: the proxies cannot tell, and nothing to its left
/// can be believed.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let Some(hops) = forwarded_hops(headers) else {
        return Some(peer);
    };
    let mut leftmost_trusted = None;
    for hop in hops.into_iter().rev() {
        match hop {
            Hop::Address(ip) if trusted.contains(ip) => leftmost_trusted = Some(ip),
            Hop::Address(ip) => return Some(ip),
            Hop::Unnamed => return Some(peer),
        }
    }
    Some(leftmost_trusted.unwrap_or(peer))
}

/// One entry of a forwarding header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Address(IpAddr),
    /// `unknown`, an obfuscated identifier, or something unreadable.
    Unnamed,
}

/// The entries of the header that counts, left to right; `None` when
/// there is none, or it is not text.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    if headers.contains_key(X_FORWARDED_FOR) {
        let mut hops = Vec::new();
        // Several header lines are one list, in order (RFC 9110 §5.3).
        for line in headers.get_all(X_FORWARDED_FOR) {
            let line = line.to_str().ok()?;
            hops.extend(
                line.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(node),
            );
        }
        return Some(hops);
    }
    if headers.contains_key(FORWARDED) {
        let mut hops = Vec::new();
        for line in headers.get_all(FORWARDED) {
            hops.extend(forwarded_line(line.to_str().ok()?));
        }
        return Some(hops);
    }
    None
}

/// The `for=` of each element of one `Forwarded` line: `for=192.0.2.60;
/// proto=https, for="[2001:db8::1]:4711"`. An element without `for` says
/// nothing of the client and counts as unnamed. Lines are read one by one,
/// so a client's unbalanced quote cannot swallow a proxy's own line.
fn forwarded_line(line: &str) -> Vec<Hop> {
    split_unquoted(line, ',')
        .into_iter()
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(|element| {
            split_unquoted(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| unquote(value.trim()))
                .map_or(Hop::Unnamed, |value| node(&value))
        })
        .collect()
}

/// `text` split at `separator`, except inside quoted strings.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token as is, a quoted string without its quotes and escapes; `None`
/// for a quote that does not close.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    Some(out)
}

/// One node (RFC 7239 §6): `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`, and, as `X-Forwarded-For` writes them, bare IPv6
/// addresses. IPv4-mapped IPv6 addresses are read as IPv4.
fn node(text: &str) -> Hop {
    let text = text.trim();
    let address = if let Some(rest) = text.strip_prefix('[') {
        rest.split_once(']')
            .filter(|(_, after)| after.is_empty() || after.strip_prefix(':').is_some_and(is_port))
            .and_then(|(inside, _)| inside.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6)
    } else if let Ok(address) = text.parse::<IpAddr>() {
        Some(address)
    } else {
        text.rsplit_once(':')
            .filter(|(_, port)| is_port(port))
            .and_then(|(host, _)| host.parse::<Ipv4Addr>().ok())
            .map(IpAddr::V4)
    };
    address.map_or(Hop::Unnamed, |ip| Hop::Address(ip.to_canonical()))
}

/// A port number, or an obfuscated one (`_abc`).
fn is_port(text: &str) -> bool {
    let obfuscated = text.strip_prefix('_').is_some_and(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    obfuscated || (text.len() <= 5 && text.parse::<u16>().is_ok() && !text.starts_with('+'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect(text)
    }

    fn trusted(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(ranges.iter().copied()).expect("ranges")
    }

    fn headers(lines: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(*name, HeaderValue::from_str(value).expect(value));
        }
        map
    }

    fn client(peer: &str, proxies: &[&str], lines: &[(&'static str, &str)]) -> Option<IpAddr> {
        resolve(Some(ip(peer)), &headers(lines), &trusted(proxies))
    }

    const LOCAL: &[&str] = &["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"];

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let xff = [("x-forwarded-for", "198.51.100.7")];
        assert_eq!(client("203.0.113.9", LOCAL, &xff), Some(ip("203.0.113.9")));
        assert_eq!(client("127.0.0.1", &[], &xff), Some(ip("127.0.0.1")));
        let forwarded = [("forwarded", "for=198.51.100.7")];
        assert_eq!(
            client("203.0.113.9", LOCAL, &forwarded),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(resolve(None, &headers(&xff), &trusted(LOCAL)), None);
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_address() {
        let cases = [
            ("198.51.100.7", "198.51.100.7"),
            ("198.51.100.7, 10.0.0.2", "198.51.100.7"),
            // Whatever the client wrote left of itself is ignored.
            ("6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
            ("127.0.0.1, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
            ("garbage, unknown, 198.51.100.7", "198.51.100.7"),
            ("198.51.100.7:4711, 10.0.0.2:80", "198.51.100.7"),
            ("2001:db8::1, 10.0.0.2", "2001:db8::1"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("198.51.100.7,,10.0.0.2,", "198.51.100.7"),
        ];
        for (header, expected) in cases {
            assert_eq!(
                client("10.0.0.1", LOCAL, &[("x-forwarded-for", header)]),
                Some(ip(expected)),
                "{header}"
            );
        }
    }

    #[test]
    fn lines_of_one_header_are_one_list() {
        let lines = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.3"),
        ];
        assert_eq!(client("10.0.0.1", LOCAL, &lines), Some(ip("198.51.100.7")));
    }

    #[test]
    fn only_proxies_give_the_left_most() {
        let lines = [("x-forwarded-for", "10.0.0.3, fd00::2, 127.0.0.1")];
        assert_eq!(client("10.0.0.1", LOCAL, &lines), Some(ip("10.0.0.3")));
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        assert_eq!(client("10.0.0.1", LOCAL, &[]), Some(ip("10.0.0.1")));
        assert_eq!(
            client("10.0.0.1", LOCAL, &[("x-forwarded-for", " , ")]),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn an_unnamed_hop_before_the_client_gives_the_peer() {
        for header in [
            "198.51.100.7, unknown",
            "198.51.100.7, _hidden",
            "198.51.100.7, not-an-address",
            "198.51.100.7, 10.0.0.2:99999",
            "198.51.100.7, [2001:db8::1",
            "198.51.100.7, 1.2.3.4.5",
        ] {
            assert_eq!(
                client("10.0.0.1", LOCAL, &[("x-forwarded-for", header)]),
                Some(ip("10.0.0.1")),
                "{header}"
            );
        }
    }

    #[test]
    fn a_header_that_is_not_text_gives_the_peer() {
        let mut map = HeaderMap::new();
        map.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"198.51.100.7\xff").expect("bytes"),
        );
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &map, &trusted(LOCAL)),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn v4_mapped_peers_are_their_v4_address() {
        assert_eq!(
            client(
                "::ffff:127.0.0.1",
                &["127.0.0.1/32"],
                &[("x-forwarded-for", "198.51.100.7")]
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client("::ffff:203.0.113.9", LOCAL, &[]),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn forwarded_names_the_client_by_for() {
        let cases = [
            ("for=198.51.100.7", "198.51.100.7"),
            ("For=\"198.51.100.7:4711\";proto=https", "198.51.100.7"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            (
                "for=\"[2001:db8:cafe::17]\", for=10.0.0.2",
                "2001:db8:cafe::17",
            ),
            ("proto=http;for=198.51.100.7;by=10.0.0.2", "198.51.100.7"),
            (
                "for=6.6.6.6, for=198.51.100.7;host=\"a,b\", for=10.0.0.2",
                "198.51.100.7",
            ),
            ("for=\"_gazonk\", for=198.51.100.7", "198.51.100.7"),
            ("for=\"[2001:db8::1]:_port\"", "2001:db8::1"),
        ];
        for (header, expected) in cases {
            assert_eq!(
                client("10.0.0.1", LOCAL, &[("forwarded", header)]),
                Some(ip(expected)),
                "{header}"
            );
        }
    }

    #[test]
    fn forwarded_without_a_readable_for_gives_the_peer() {
        for header in [
            "for=198.51.100.7, for=unknown",
            "for=198.51.100.7, for=_hidden",
            "for=198.51.100.7, proto=https",
            "for=198.51.100.7, for=\"[2001:db8::1]",
            "for=198.51.100.7, for=[2001:db8::1]:80x",
        ] {
            assert_eq!(
                client("10.0.0.1", LOCAL, &[("forwarded", header)]),
                Some(ip("10.0.0.1")),
                "{header}"
            );
        }
    }

    #[test]
    fn a_clients_broken_forwarded_line_does_not_hide_the_proxys() {
        let lines = [
            ("forwarded", "for=\"6.6.6.6"),
            ("forwarded", "for=198.51.100.7"),
        ];
        assert_eq!(client("10.0.0.1", LOCAL, &lines), Some(ip("198.51.100.7")));
    }

    #[test]
    fn x_forwarded_for_wins_over_forwarded() {
        let lines = [
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ];
        assert_eq!(client("10.0.0.1", LOCAL, &lines), Some(ip("198.51.100.7")));
    }

    #[test]
    fn nodes() {
        assert_eq!(node("198.51.100.7"), Hop::Address(ip("198.51.100.7")));
        assert_eq!(node(" 198.51.100.7:1 "), Hop::Address(ip("198.51.100.7")));
        assert_eq!(node("[::1]:_x"), Hop::Address(ip("::1")));
        assert_eq!(node("::1"), Hop::Address(ip("::1")));
        for unnamed in [
            "",
            "unknown",
            "_x",
            "198.51.100.7:",
            "198.51.100.7:+80",
            "198.51.100.7:_",
            "[::1]x",
            "[198.51.100.7]",
            "2001:db8::1:80:x",
            "fe80::1%eth0",
            "1.2.3",
        ] {
            assert_eq!(node(unnamed), Hop::Unnamed, "{unnamed}");
        }
    }
}
