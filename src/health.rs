//! `muster health`: one `GET /healthz` over plain HTTP/1.1, so the image's
//! health check needs no curl.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

pub fn probe(url: Option<&str>, listen: SocketAddr) -> ExitCode {
    let target = match url {
        Some(url) => match host_port(url) {
            Ok(target) => target,
            Err(err) => {
                eprintln!("error: --url: {err}");
                return ExitCode::FAILURE;
            }
        },
        None => {
            let ip = match listen.ip() {
                ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                ip => ip,
            };
            (ip.to_string(), listen.port())
        }
    };
    match status_of(&target) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("unhealthy: /healthz answered {status}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("unhealthy: {}:{}: {err}", target.0, target.1);
            ExitCode::FAILURE
        }
    }
}

/// The host and port of an `http://` base URL.
fn host_port(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs can be probed")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let port = |raw: &str| raw.parse::<u16>().map_err(|_| format!("bad port {raw:?}"));
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or("unclosed [")?;
            match after.strip_prefix(':') {
                Some(raw) => (host, port(raw)?),
                None if after.is_empty() => (host, 80),
                None => return Err(format!("bad address {authority:?}")),
            }
        }
        None => match authority.split_once(':') {
            Some((host, raw)) => (host, port(raw)?),
            None => (authority, 80),
        },
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok((host.to_owned(), port))
}

fn status_of((host, port): &(String, u16)) -> std::io::Result<u16> {
    let addr = (host.as_str(), *port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(head.get(..read).unwrap_or_default());
    // "HTTP/1.1 200 OK"
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_give_host_and_port() {
        assert_eq!(
            host_port("http://127.0.0.1:8080"),
            Ok(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            host_port("http://muster/healthz"),
            Ok(("muster".into(), 80))
        );
        assert_eq!(host_port("http://[::1]:9000"), Ok(("::1".into(), 9000)));
        assert_eq!(host_port("http://[::1]"), Ok(("::1".into(), 80)));
        assert!(host_port("https://x").is_err());
        assert!(host_port("http://:80").is_err());
        assert!(host_port("http://x:y").is_err());
    }
}
