//! What the endpoint refuses at the HTTP level, as iSymphony's servlet container does
//! (issue 11 point 11): a request head over 8 KiB (431), a path segment holding an encoded `/`
//! (400), a body whose chunked framing is broken (400). Path segments are percent-decoded
//! before routing, so `/server/br%61nd` is `/server/brand`.

use super::error::Error;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

/// Request line plus headers, in bytes; hyper answers 431 beyond it (its smallest buffer, and
/// Tomcat's default `maxHttpHeaderSize`).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Apply [`MAX_HEAD_BYTES`] to a listener's HTTP/1 read buffer and HTTP/2 header list.
pub fn limit_head<A>(server: &mut axum_server::Server<A>) {
    let b = server.http_builder();
    b.http1().max_buf_size(MAX_HEAD_BYTES);
    b.http2().max_header_list_size(MAX_HEAD_BYTES as u32);
}

/// Set on a request whose path cannot be routed; [`bad_path`] answers it with 400.
#[derive(Clone, Debug)]
pub struct BadPath(pub String);

/// Decode each segment of `path` and encode it again in one canonical form (only unreserved
/// characters literal), so routing sees `brand` for `br%61nd` and handlers still get the
/// decoded value from their path parameters. An encoded `/` inside a segment is refused:
/// treating it as a separator would let `a%2Fb` reach a different resource than `a/b` names.
pub fn canonical_segments(path: &str) -> Result<String, Error> {
    if !path.contains('%') {
        return Ok(path.to_string());
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let lower = seg.to_ascii_lowercase();
        if lower.contains("%2f") {
            return Err(Error::BadRequest(
                "An encoded '/' (%2F) is not allowed inside a path segment.".into(),
            ));
        }
        let decoded = String::from_utf8(crate::api::paths::unseg_bytes(seg)).map_err(|_| {
            Error::BadRequest("A path segment is not valid UTF-8 once decoded.".into())
        })?;
        out.push_str(&crate::api::paths::seg(&decoded));
    }
    Ok(out)
}

/// The 400 for a request [`super::rewrite::rewrite`] could not map (None: it could).
pub fn bad_path(req: &Request) -> Option<Response> {
    let BadPath(msg) = req.extensions().get::<BadPath>()?;
    Some(Error::BadRequest(msg.clone()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_decoded_once_and_encoded_slashes_refused() {
        assert_eq!(canonical_segments("/a/br%61nd").unwrap(), "/a/brand");
        assert_eq!(canonical_segments("/a/x%2520y").unwrap(), "/a/x%2520y");
        assert_eq!(canonical_segments("/a/x%20y/").unwrap(), "/a/x%20y/");
        assert_eq!(canonical_segments("/plain/path").unwrap(), "/plain/path");
        assert_eq!(canonical_segments("/a/100%").unwrap(), "/a/100%25");
        assert_eq!(canonical_segments("/a/%41%").unwrap(), "/a/A%25");
        for bad in ["/a/b%2Fc", "/a/b%2fc", "/%2F", "/a/%FF%FE"] {
            let e = canonical_segments(bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
        }
    }
}
