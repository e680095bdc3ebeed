//! The addresses `markbase serve` listens on by default: free, or taken and how to
//! listen elsewhere.

use std::io;
use std::net::{SocketAddr, TcpListener};

use super::check::{Check, Status};
use crate::cli::{NFS_LISTEN, WEBDAV_LISTEN};

/// How many ports after a taken one are tried for the fix's `--listen`.
const NEARBY: u16 = 20;

/// One line for each protocol's default address.
pub fn checks() -> Vec<Check> {
    [("webdav", WEBDAV_LISTEN), ("nfs", NFS_LISTEN)]
        .into_iter()
        .map(|(protocol, listen)| {
            let address = listen
                .parse()
                .expect("the default listen addresses are IP addresses");
            check(protocol, address)
        })
        .collect()
}

/// Whether `address` can be bound (the listener is dropped at once).
fn check(protocol: &str, address: SocketAddr) -> Check {
    let name = format!("{protocol} port");
    let serve = format!("markbase serve {protocol}");
    let err = match TcpListener::bind(address) {
        Ok(_) => {
            return Check::new(name, Status::Ok, format!("{address} ({serve}) is free"));
        }
        Err(err) => err,
    };
    if err.kind() != io::ErrorKind::AddrInUse {
        return Check::new(
            name,
            Status::Warn(format!(
                "`{serve} --listen HOST:PORT` with an address this machine has"
            )),
            format!("{address} ({serve}) cannot be bound: {err}"),
        );
    }
    let elsewhere = free_after(address)
        .map(|free| free.to_string())
        .unwrap_or_else(|| format!("{}:PORT", address.ip()));
    let port = address.port();
    let who = if cfg!(target_os = "macos") {
        format!("lsof -nP -iTCP:{port} -sTCP:LISTEN")
    } else {
        format!("ss -ltnp 'sport = :{port}'")
    };
    Check::new(
        name,
        Status::Warn(format!(
            "`{serve} --listen {elsewhere}`, or stop what holds it (`{who}` names it)"
        )),
        format!("{address} ({serve}) is taken by another program (or a running {serve})"),
    )
}

/// The first of the few ports after `address`'s that can be bound.
fn free_after(address: SocketAddr) -> Option<SocketAddr> {
    (1..=NEARBY)
        .filter_map(|step| address.port().checked_add(step))
        .map(|port| SocketAddr::new(address.ip(), port))
        .find(|candidate| TcpListener::bind(candidate).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_addresses_parse() {
        for listen in [WEBDAV_LISTEN, NFS_LISTEN] {
            assert!(listen.parse::<SocketAddr>().is_ok(), "{listen}");
        }
    }
}
