//! Requests refused before dav-server sees them: what it would get wrong.

use dav_server::body::Body;
use dav_server::davpath::{DavPath, ParseError};
use http::uri::{Authority, Uri};
use http::{Request, Response, StatusCode, header};
use markbase_vfs::node::validate_path;

/// The reply to a request that must not reach dav-server, if `request` is one:
///
/// - a path or COPY/MOVE Destination that names no place in this catalog: see
///   [`refuse_path`] and [`refuse_destination`];
/// - PROPFIND with `Depth: infinity` or no Depth: 403 with `propfind-finite-depth`
///   (RFC 4918 9.1; dav-server answers 501, or serves it to litmus); another Depth: 400;
/// - DELETE or MOVE of the root, and COPY or MOVE onto it: 403 (dav-server would
///   empty the whole library first, entry by entry).
pub(crate) fn refuse<B>(request: &Request<B>) -> Option<Response<Body>> {
    let method = request.method().as_str();
    let path = request.uri().path();
    if let Err(code) = refuse_path(path) {
        tracing::debug!("refused {method} of {path:?}: {code}");
        return Some(status(code));
    }
    if matches!(method, "COPY" | "MOVE")
        && let Some(destination) = request.headers().get("destination")
        && let Err(code) =
            refuse_destination(destination.as_bytes(), authority_of(request).as_ref())
    {
        tracing::debug!("refused {method} to {destination:?}: {code}");
        return Some(status(code));
    }
    if method == "PROPFIND" {
        let depth = request
            .headers()
            .get("depth")
            .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        return match depth.as_deref() {
            None | Some("infinity") => Some(finite_depth_only()),
            Some("0" | "1") => None,
            Some(_) => Some(status(StatusCode::BAD_REQUEST)),
        };
    }
    let changes_root = match method {
        "DELETE" | "MOVE" if is_root(request.uri().path()) => true,
        "COPY" | "MOVE" => request
            .headers()
            .get("destination")
            .and_then(|value| value.to_str().ok())
            .and_then(|url| url.parse::<http::Uri>().ok())
            .is_some_and(|url| is_root(url.path())),
        _ => false,
    };
    changes_root.then(|| status(StatusCode::FORBIDDEN))
}

/// The reply to a PUT that announces more bytes (`Content-Length`, or Finder's
/// `X-Expected-Entity-Length`) than the store has `free`: 507, before any is read.
pub(crate) fn refuse_upload<B>(request: &Request<B>, free: u64) -> Option<Response<Body>> {
    if request.method().as_str() != "PUT" {
        return None;
    }
    let announced = ["content-length", "x-expected-entity-length"]
        .iter()
        .filter_map(|name| {
            request
                .headers()
                .get(*name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .max()?;
    (announced > free).then(|| {
        tracing::warn!("refused a PUT of {announced} bytes: the store has {free} bytes free");
        status(StatusCode::INSUFFICIENT_STORAGE)
    })
}

/// Checks a request path as sent (percent-encoded, maybe with `.` and `..`) once
/// decoded as dav-server decodes it ([`DavPath`]): `..` above the root is refused
/// (403), as dav-server does; an encoded `/` or NUL in a name, bytes outside printable
/// ASCII (as dav-server does), a path that is not UTF-8 (the catalog holds UTF-8 names
/// only) and a name holding a backslash get 400; a name over `NAME_MAX` bytes or a path
/// over `PATH_MAX` bytes 414 ([`markbase_vfs::node::validate_path`]). `*` (for `OPTIONS *`)
/// passes.
///
/// dav-server takes a backslash for an ordinary name byte, so `PUT /a%5c..%5cb` would
/// create a file named `a\..\b`. The core refuses names over `NAME_MAX` on its own,
/// but dav-server reports that refusal for the target of a directory COPY as a 207
/// Multi-Status, not as a 4xx.
pub(crate) fn refuse_path(path: &str) -> Result<(), StatusCode> {
    if path == "*" {
        return Ok(());
    }
    let decoded = DavPath::new(path).map_err(|err| match err {
        ParseError::ForbiddenPath => StatusCode::FORBIDDEN,
        ParseError::InvalidPath | ParseError::PrefixMismatch => StatusCode::BAD_REQUEST,
    })?;
    let decoded = std::str::from_utf8(decoded.as_bytes()).map_err(|_| StatusCode::BAD_REQUEST)?;
    validate_path(decoded).map_err(|err| {
        if err.is_too_long() {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::BAD_REQUEST
        }
    })
}

/// Checks the `destination` of a COPY or MOVE sent to `authority` (the request's
/// `host[:port]`, if it named one). The Destination must be a path (`/a/b`) or an
/// `http`/`https` URL on this very server, and its path must pass [`refuse_path`]
/// (dav-server would resolve `..` above the root of a URL's path to the root).
///
/// dav-server keeps only the path of a Destination URL, so a COPY to
/// `http://elsewhere/a` would copy to `/a` here. That is refused with 403, as is any
/// other scheme; a scheme-relative `//elsewhere/a`, which dav-server reads as the path
/// `/elsewhere/a`, is refused with 400. The scheme of a URL is not compared, since a
/// TLS proxy in front of the server may receive `https` URLs and pass them on as they
/// are; an absent port is the scheme's default, for either side. A backslash anywhere,
/// raw or as `%5C`, is refused (400) before any parsing: dav-server parses URLs with
/// another parser, which could see another path.
pub(crate) fn refuse_destination(
    destination: &[u8],
    authority: Option<&Authority>,
) -> Result<(), StatusCode> {
    let lowercase = destination.to_ascii_lowercase();
    if lowercase.contains(&b'\\') || lowercase.windows(3).any(|three| three == b"%5c") {
        return Err(StatusCode::BAD_REQUEST);
    }
    let Ok(destination) = std::str::from_utf8(destination) else {
        // dav-server refuses it: 400.
        return Ok(());
    };
    if destination.starts_with("//") {
        return Err(StatusCode::BAD_REQUEST);
    }
    if destination.starts_with('/') {
        let path = destination.split(['?', '#']).next().unwrap_or_default();
        return refuse_path(path);
    }
    let url: Uri = destination.parse().map_err(|_| StatusCode::BAD_REQUEST)?;
    let default_port = match url.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(StatusCode::FORBIDDEN),
    };
    let (Some(there), Some(here)) = (url.authority(), authority) else {
        return Err(StatusCode::FORBIDDEN);
    };
    let same_server = there.host().eq_ignore_ascii_case(here.host())
        && there.port_u16().unwrap_or(default_port) == here.port_u16().unwrap_or(default_port);
    if !same_server {
        return Err(StatusCode::FORBIDDEN);
    }
    refuse_path(url.path())
}

/// The `host[:port]` `request` was sent to: from an absolute request URI, else from
/// its Host header.
fn authority_of<B>(request: &Request<B>) -> Option<Authority> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.clone());
    }
    request
        .headers()
        .get(header::HOST)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Whether `path` (as sent: percent-encoded, maybe with `.`/`..`) names the root.
fn is_root(path: &str) -> bool {
    DavPath::new(path).is_ok_and(|path| path.as_bytes() == b"/")
}

fn finite_depth_only() -> Response<Body> {
    let body = concat!(
        r#"<?xml version="1.0" encoding="utf-8"?>"#,
        "\n",
        r#"<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>"#
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}

fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use markbase_vfs::node::{NAME_MAX, PATH_MAX};

    use http::Method;

    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn refused(method: &str, path: &str, headers: &[(&str, &str)]) -> Option<StatusCode> {
        refuse(&request(method, path, headers)).map(|response| response.status())
    }

    #[test]
    fn propfind_depth_must_be_0_or_1() {
        assert_eq!(refused("PROPFIND", "/", &[]), Some(StatusCode::FORBIDDEN));
        let infinity = [("depth", "Infinity")];
        assert_eq!(
            refused("PROPFIND", "/a", &infinity),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            refused("PROPFIND", "/a", &[("depth", "2")]),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(refused("PROPFIND", "/a", &[("depth", "1")]), None);
        assert_eq!(refused("PROPFIND", "/a", &[("depth", "0")]), None);
    }

    #[test]
    fn the_root_is_never_deleted_moved_or_overwritten() {
        assert_eq!(refused("DELETE", "/", &[]), Some(StatusCode::FORBIDDEN));
        assert_eq!(refused("DELETE", "/a/..", &[]), Some(StatusCode::FORBIDDEN));
        assert_eq!(
            refused("DELETE", "/a/%2e%2e/", &[]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            refused("MOVE", "/", &[("destination", "/x")]),
            Some(StatusCode::FORBIDDEN)
        );
        for destination in ["http://h/", "http://h/a/..", "/", "http://h/a/%2E%2E"] {
            let headers = [("destination", destination), ("host", "h")];
            assert_eq!(
                refused("MOVE", "/a", &headers),
                Some(StatusCode::FORBIDDEN),
                "{destination}"
            );
            assert_eq!(
                refused("COPY", "/a", &headers),
                Some(StatusCode::FORBIDDEN),
                "{destination}"
            );
        }
        assert_eq!(refused("DELETE", "/a", &[]), None);
        assert_eq!(
            refused(
                "MOVE",
                "/a",
                &[("destination", "http://h/b"), ("host", "h")]
            ),
            None
        );
        assert_eq!(refused("GET", "/", &[]), None);
    }

    #[test]
    fn backslashes_and_overlong_names_and_paths_are_refused() {
        for path in [
            "/a%5cb",
            "/a%5Cb",
            "/..\\..\\etc",
            "/Day%201/x\\",
            "/%5c..%5cetc",
        ] {
            assert_eq!(refuse_path(path), Err(StatusCode::BAD_REQUEST), "{path}");
        }
        let longest = format!("/d/{}", "n".repeat(NAME_MAX));
        assert_eq!(refuse_path(&longest), Ok(()));
        let over = format!("/d/{}/e", "n".repeat(NAME_MAX + 1));
        assert_eq!(refuse_path(&over), Err(StatusCode::URI_TOO_LONG));
        // Percent-encoding counts once decoded: 255 encoded bytes are a 255-byte name.
        let encoded = format!("/{}", "%C3%A9".repeat(127));
        assert_eq!(refuse_path(&encoded), Ok(()));
        let encoded = format!("/{}", "%C3%A9".repeat(128));
        assert_eq!(refuse_path(&encoded), Err(StatusCode::URI_TOO_LONG));
        let deepest = format!("/{}", "a/".repeat(PATH_MAX / 2 - 1));
        assert_eq!(refuse_path(&deepest), Ok(()));
        let deeper = format!("/{}", "a/".repeat(PATH_MAX / 2));
        assert_eq!(refuse_path(&deeper), Err(StatusCode::URI_TOO_LONG));
        // What dav-server refuses too, with the same status.
        for path in ["/../etc", "/%2e%2e/etc", "/a/%2E%2E/%2e%2e/etc"] {
            assert_eq!(refuse_path(path), Err(StatusCode::FORBIDDEN), "{path}");
        }
        for path in ["/a%2fb", "/a%00b", "a", "/\u{e9}"] {
            assert_eq!(refuse_path(path), Err(StatusCode::BAD_REQUEST), "{path}");
        }
        for path in ["/Day%201/clip.mov", "/a/../b/./c/", "/", "*"] {
            assert_eq!(refuse_path(path), Ok(()), "{path}");
        }
        assert_eq!(refused("PUT", "/a%5cb", &[]), Some(StatusCode::BAD_REQUEST));
        assert_eq!(refused("GET", &over, &[]), Some(StatusCode::URI_TOO_LONG));
        assert_eq!(refused("GET", "/Day%201/clip.mov", &[]), None);
    }

    #[test]
    fn destinations_must_be_paths_here() {
        let here: Authority = "Dav.Example:8080".parse().unwrap();
        let check = |destination: &str| refuse_destination(destination.as_bytes(), Some(&here));
        for fine in [
            "/a/b",
            "/a%20b?query",
            "http://dav.example:8080/a",
            "https://DAV.example:8080/a",
            "http://user@dav.example:8080/a",
            "http://dav.example:8080/a/../b",
        ] {
            assert_eq!(check(fine), Ok(()), "{fine}");
        }
        for forbidden in [
            "http://other.example:8080/a",
            "http://dav.example/a",
            "https://dav.example/a",
            "http://dav.example:8081/a",
            "ftp://dav.example:8080/a",
            // Here, but above the root.
            "/../a",
            "/a/%2e%2e/%2e%2e/b",
            "http://dav.example:8080/../a",
            "http://dav.example:8080/%2e%2e/a",
        ] {
            assert_eq!(check(forbidden), Err(StatusCode::FORBIDDEN), "{forbidden}");
        }
        for malformed in [
            "//other.example/a",
            "/a%5cb",
            "/..\\a",
            "http://dav.example:8080/a%5Cb",
            "http://dav.example:8080\\a",
            "not a url",
            "file:///a",
        ] {
            assert_eq!(
                check(malformed),
                Err(StatusCode::BAD_REQUEST),
                "{malformed}"
            );
        }
        let long = format!("http://dav.example:8080/{}", "n".repeat(NAME_MAX + 1));
        assert_eq!(check(&long), Err(StatusCode::URI_TOO_LONG));
        // Without a Host, a URL cannot be told to be this server's.
        assert_eq!(
            refuse_destination(b"http://dav.example/a", None),
            Err(StatusCode::FORBIDDEN)
        );
        assert_eq!(refuse_destination(b"/a", None), Ok(()));
        // An absent port is the default for the scheme, on either side.
        let plain: Authority = "dav.example".parse().unwrap();
        let plain = Some(&plain);
        assert_eq!(
            refuse_destination(b"http://dav.example:80/a", plain),
            Ok(())
        );
        assert_eq!(refuse_destination(b"https://dav.example/a", plain), Ok(()));

        let to = |destination: &str, host: &str| {
            refused(
                "COPY",
                "/a",
                &[("destination", destination), ("host", host)],
            )
        };
        assert_eq!(to("http://other/b", "dav:80"), Some(StatusCode::FORBIDDEN));
        assert_eq!(to("http://dav/b", "dav:80"), None);
        assert_eq!(to("/b%5c", "dav"), Some(StatusCode::BAD_REQUEST));
        // An absolute request URI names the server, whatever the Host says.
        let request = request(
            "MOVE",
            "http://dav:80/a",
            &[("destination", "http://dav/b"), ("host", "x")],
        );
        assert!(refuse(&request).is_none());
    }

    #[test]
    fn puts_announcing_more_than_is_free_are_refused() {
        let put = |headers: &[(&str, &str)]| {
            refuse_upload(&request("PUT", "/a", headers), 1000).map(|response| response.status())
        };
        assert_eq!(
            put(&[("content-length", "1001")]),
            Some(StatusCode::INSUFFICIENT_STORAGE)
        );
        let finder = [
            ("x-expected-entity-length", "5000"),
            ("transfer-encoding", "chunked"),
        ];
        assert_eq!(put(&finder), Some(StatusCode::INSUFFICIENT_STORAGE));
        assert_eq!(put(&[("content-length", "1000")]), None);
        assert_eq!(put(&[]), None);
        let get = refuse_upload(&request("GET", "/a", &[("content-length", "5000")]), 1000);
        assert!(get.is_none());
    }
}
