//! Requests refused before dav-server sees them: what it would get wrong.

use dav_server::body::Body;
use dav_server::davpath::DavPath;
use http::{Request, Response, StatusCode, header};

/// The reply to a request that must not reach dav-server, if `request` is one:
///
/// - PROPFIND with `Depth: infinity` or no Depth: 403 with `propfind-finite-depth`
///   (RFC 4918 9.1; dav-server answers 501, or serves it to litmus); another Depth: 400;
/// - DELETE or MOVE of the root, and COPY or MOVE onto it: 403 (dav-server would
///   empty the whole library first, entry by entry).
pub(crate) fn refuse<B>(request: &Request<B>) -> Option<Response<Body>> {
    let method = request.method().as_str();
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
            let headers = [("destination", destination)];
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
            refused("MOVE", "/a", &[("destination", "http://h/b")]),
            None
        );
        assert_eq!(refused("GET", "/", &[]), None);
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
