//! Hostile input: a table of malformed, oversized and malicious requests,
//! written as raw bytes over TCP (reqwest cannot express most of them), each with the status
//! it must get (or "connection closed without a response"), and after each one the server
//! must still answer a normal authenticated GET.

use crate::support;

use base64::Engine;
use std::net::SocketAddr;
use std::time::Duration;
use support::server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status recorded when no answer came within 10 s.
const TIMED_OUT: u16 = 999;

const P: &str = "/communication_manager/api/resource";

fn auth() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    )
}

fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// A request with the right credentials, `Content-Length` and `Connection: close`.
fn req(method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    req_auth(method, path, Some(&auth()), extra, body)
}

fn req_auth(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
    if let Some(a) = authorization {
        out.extend_from_slice(format!("Authorization: {a}\r\n").as_bytes());
    }
    for (k, v) in extra {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn post_json(path: &str, body: &[u8]) -> Vec<u8> {
    req("POST", path, &[("Content-Type", "application/json")], body)
}

/// Write `bytes` (concurrently with reading, so an early answer is not lost), then read the
/// status of the answer; None when the server closed the connection without one.
async fn send_raw(addr: SocketAddr, bytes: Vec<u8>, half_close: bool) -> Option<u16> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may answer and close before reading everything: ignore write errors.
        let _ = wr.write_all(&bytes).await;
        if half_close {
            let _ = wr.shutdown().await;
        }
        // Keep the write half open (no FIN) until the answer is read.
        wr
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // The status of the first final (non-1xx) answer; None when the connection ends first.
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let status: Option<u16> = head
                    .strip_prefix("HTTP/1.1 ")
                    .or_else(|| head.strip_prefix("HTTP/1.0 "))
                    .and_then(|r| r.get(..3))
                    .and_then(|s| s.parse().ok());
                match status {
                    // 100 Continue: the real answer follows.
                    Some(s) if (100..200).contains(&s) => {
                        buf.drain(..end + 4);
                        continue;
                    }
                    other => return other,
                }
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let got = tokio::time::timeout(Duration::from_secs(10), read).await;
    writer.abort();
    // A hostile request must not hang its answer: report a timeout as a mismatch.
    got.unwrap_or(Some(TIMED_OUT))
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// Expected status; None: the connection is closed without an answer.
    expect: Option<u16>,
    /// Close our write side after sending (a truncated request).
    half_close: bool,
}

fn case(name: &'static str, bytes: Vec<u8>, expect: u16) -> Case {
    Case {
        name,
        bytes,
        expect: Some(expect),
        half_close: false,
    }
}

fn cases(cs: &str) -> Vec<Case> {
    let ext = format!("{P}/asterisk/{cs}/extensions");
    let coll = format!("{P}/server/coreServers");
    let nest = |depth: usize| -> Vec<u8> {
        let mut v = b"{\"extension\":\"5000\",\"x\":".to_vec();
        v.extend(std::iter::repeat(b'[').take(depth));
        v.extend(std::iter::repeat(b']').take(depth));
        v.push(b'}');
        v
    };
    let big_string = |n: usize| -> Vec<u8> {
        let mut v = b"{\"extension\":\"5001\",\"displayName\":\"".to_vec();
        v.extend(std::iter::repeat(b'a').take(n));
        v.extend_from_slice(b"\"}");
        v
    };
    let big_array = |n: usize| -> Vec<u8> {
        let mut v = b"{\"extension\":\"5002\",\"x\":[".to_vec();
        for i in 0..n {
            if i > 0 {
                v.push(b',');
            }
            v.push(b'1');
        }
        v.extend_from_slice(b"]}");
        v
    };
    let mut many_headers = format!("GET {coll} HTTP/1.1\r\nAuthorization: {}\r\n", auth());
    for i in 0..500 {
        many_headers.push_str(&format!("X-H{i}: v\r\n"));
    }
    many_headers.push_str("\r\n");
    let huge_header = format!(
        "GET {coll} HTTP/1.1\r\nAuthorization: {}\r\nX-Big: {}\r\n\r\n",
        auth(),
        "a".repeat(1 << 20)
    );
    let long_path = |n: usize| format!("{P}/server/coreServers/{}", "a".repeat(n));
    let mut nul_in_path = format!("GET {coll}/").into_bytes();
    nul_in_path.extend_from_slice(b"\0 HTTP/1.1\r\n\r\n");
    let mut utf8_path = format!("GET {coll}/").into_bytes();
    utf8_path.extend_from_slice(b"\xff\xfe HTTP/1.1\r\n\r\n");
    let mut nul_header =
        format!("GET {coll} HTTP/1.1\r\nAuthorization: {}\r\nX-A: a", auth()).into_bytes();
    nul_header.extend_from_slice(b"\0b\r\n\r\n");
    let mut non_ascii_auth = format!("GET {coll} HTTP/1.1\r\nAuthorization: Basic ").into_bytes();
    non_ascii_auth.extend_from_slice(b"\xc3\xa9\xff\r\nConnection: close\r\n\r\n");
    let binary: Vec<u8> = (0u8..=255).collect();
    let truncated_body = {
        let mut v = req(
            "POST",
            &ext,
            &[("Content-Type", "application/json")],
            b"{\"extension\":\"5003\"}",
        );
        // Announce more than is sent, then half-close.
        let s = String::from_utf8(v.clone()).unwrap();
        v = s
            .replace("Content-Length: 20", "Content-Length: 500")
            .into_bytes();
        v
    };
    let chunked_get = format!(
        "GET {coll} HTTP/1.1\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        auth()
    );

    vec![
        // --- Request line and framing (hyper refuses these before any handler) ---
        case("garbage request line", b"HELLO\r\n\r\n".to_vec(), 400),
        case("request line without version", format!("GET {coll}\r\n\r\n").into_bytes(), 400),
        case("unsupported HTTP version", format!("GET {coll} HTTP/3.7\r\n\r\n").into_bytes(), 400),
        case("binary junk", binary, 400),
        case("invalid UTF-8 in the path", utf8_path, 400),
        case("raw NUL byte in the path", nul_in_path, 400),
        case("space inside the path", format!("GET {coll}/a b HTTP/1.1\r\n\r\n").into_bytes(), 400),
        case("header line without a colon", format!("GET {coll} HTTP/1.1\r\nNoColon\r\n\r\n").into_bytes(), 400),
        case("invalid header name", format!("GET {coll} HTTP/1.1\r\nBad Name: x\r\n\r\n").into_bytes(), 400),
        case("NUL byte in a header value", nul_header, 400),
        case("obsolete header folding", format!("GET {coll} HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n").into_bytes(), 400),
        case("1 MiB header", huge_header.into_bytes(), 431),
        case("500 headers", many_headers.into_bytes(), 431),
        // RFC 9112 §6.3: chunked wins over Content-Length; the (empty) chunked body is no JSON.
        case("Content-Length and Transfer-Encoding both", format!("POST {ext} HTTP/1.1\r\nAuthorization: {}\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", auth()).into_bytes(), 412),
        case("two different Content-Lengths", format!("POST {ext} HTTP/1.1\r\nAuthorization: {}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}", auth()).into_bytes(), 400),
        case("negative Content-Length", format!("POST {ext} HTTP/1.1\r\nAuthorization: {}\r\nContent-Length: -1\r\n\r\n", auth()).into_bytes(), 400),
        case("invalid chunk size", format!("POST {ext} HTTP/1.1\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n", auth()).into_bytes(), 400),
        // Broken body framing is the HTTP layer's 400, not a JSON 412.
        Case { name: "body shorter than Content-Length (truncated)", bytes: truncated_body, expect: Some(400), half_close: true },
        // --- Methods ---
        case("unknown method FOO", req("FOO", &coll, &[], b""), 405),
        case("lower-case get", req("get", &coll, &[], b""), 405),
        case("PATCH", req("PATCH", &coll, &[], b"{}"), 405),
        case("TRACE", req("TRACE", &coll, &[], b""), 405),
        case("OPTIONS", req("OPTIONS", &coll, &[], b""), 405),
        case("DELETE on a collection", req("DELETE", &coll, &[], b""), 405),
        // A request head (request line included) over 8 KiB is 431.
        case("10 KiB method name", req(&"X".repeat(10_000), &coll, &[], b""), 431),
        // --- Paths ---
        case("dot-dot out of the prefix", req("GET", &format!("{P}/../../../../etc/passwd"), &[], b""), 404),
        case("dot-dot inside the tree", req("GET", &format!("{P}/server/../server/coreServers"), &[], b""), 404),
        case("encoded dot-dot", req("GET", &format!("{P}/server/%2e%2e/server/coreServers"), &[], b""), 404),
        // An encoded slash inside a segment is refused, never a separator.
        case("encoded slash in an id", req("GET", &format!("{coll}/{cs}%2F..%2F..%2Fx"), &[], b""), 400),
        case("encoded slash in a parent id", req("GET", &format!("{P}/asterisk/{cs}%2Fextensions/extensions"), &[], b""), 400),
        case("backslashes", req("GET", &format!("{P}\\..\\..\\etc\\passwd"), &[], b""), 404),
        case("encoded NUL as an id", req("GET", &format!("{coll}/%00"), &[], b""), 404),
        // A segment that is not UTF-8 once decoded is refused before routing.
        case("encoded invalid UTF-8 as an id", req("GET", &format!("{coll}/%FF%FE"), &[], b""), 400),
        case("doubled slashes are the same path", req("GET", &format!("{P}//server//coreServers//"), &[], b""), 200),
        case("absolute-form request target", req("GET", &format!("http://evil.example{coll}"), &[], b""), 200),
        case("asterisk-form request target", req("GET", "*", &[], b""), 404),
        case("10 KiB path", req("GET", &long_path(10_000), &[], b""), 431),
        case("70 KiB path", req("GET", &long_path(70_000), &[], b""), 431),
        case("5,000 path segments", req("GET", &format!("{P}{}", "/a".repeat(5_000)), &[], b""), 431),
        case("1,000 path segments", req("GET", &format!("{P}{}", "/a".repeat(1_000)), &[], b""), 404),
        // --- Credentials ---
        case("no credentials", req_auth("GET", &coll, None, &[], b""), 401),
        case("wrong password", req_auth("GET", &coll, Some(&format!("Basic {}", b64(b"manager:nope"))), &[], b""), 403),
        case("invalid base64", req_auth("GET", &coll, Some("Basic !!!***"), &[], b""), 401),
        case("credentials without a colon", req_auth("GET", &coll, Some(&format!("Basic {}", b64(b"managerpassword"))), &[], b""), 401),
        case("empty Basic", req_auth("GET", &coll, Some("Basic "), &[], b""), 401),
        case("Bearer scheme", req_auth("GET", &coll, Some("Bearer abc.def.ghi"), &[], b""), 401),
        case("64 KiB Basic credentials", req_auth("GET", &coll, Some(&format!("Basic {}", b64(format!("manager:{}", "p".repeat(48_000)).as_bytes()))), &[], b""), 431),
        case("invalid UTF-8 inside the credentials", req_auth("GET", &coll, Some(&format!("Basic {}", b64(b"manager:\xff\xfe"))), &[], b""), 403),
        case("right password plus a NUL", req_auth("GET", &coll, Some(&format!("Basic {}", b64(format!("{USER}:{PASS}\0").as_bytes()))), &[], b""), 403),
        case("non-ASCII bytes in the Authorization header", non_ascii_auth, 401),
        // --- Bodies ---
        case("malformed JSON", post_json(&ext, b"{\"extension\": ,}"), 412),
        case("truncated JSON", post_json(&ext, b"{\"extension\":\"5004\""), 412),
        case("empty body on POST", post_json(&ext, b""), 412),
        case("whitespace-only body", post_json(&ext, b"  \n\t "), 412),
        case("JSON array instead of an object", post_json(&ext, b"[]"), 412),
        case("JSON string instead of an object", post_json(&ext, b"\"x\""), 412),
        case("JSON null", post_json(&ext, b"null"), 412),
        case("100,000 nested arrays", post_json(&ext, &b"[".repeat(100_000)), 412),
        case("10,000 nested objects", post_json(&ext, &b"{\"a\":".repeat(10_000)), 412),
        case("nesting past the parser limit", post_json(&ext, &nest(200)), 412),
        case("nesting within the parser limit is kept", post_json(&ext, &nest(100)), 204),
        case("2 MiB string (over the body limit)", post_json(&ext, &big_string(2 << 20)), 413),
        case("1.5 MiB array (over the body limit)", post_json(&ext, &big_array(800_000)), 413),
        case("Content-Length over the limit, no body sent", {
            let s = String::from_utf8(post_json(&ext, b"{}")).unwrap();
            s.replace("Content-Length: 2\r\n", "Content-Length: 50000000\r\n").trim_end_matches("{}").as_bytes().to_vec()
        }, 413),
        case("500 KiB string within the limit", post_json(&ext, &big_string(500_000)), 204),
        case("wrong type: extension as an object", post_json(&ext, b"{\"extension\":{\"a\":1}}"), 412),
        case("wrong type: autoAnswer as a word", post_json(&ext, b"{\"extension\":\"5005\",\"autoAnswer\":\"maybe\"}"), 412),
        case("wrong type: number too big", post_json(&ext, b"{\"extension\":\"5006\",\"autoAnswer\":1e999}"), 412),
        case("missing required field", post_json(&ext, b"{\"displayName\":\"x\"}"), 412),
        case("duplicate keys: the last one wins", post_json(&ext, b"{\"id\":\"dup\",\"extension\":\"5007\",\"extension\":\"5008\"}"), 204),
        case("escaped NUL inside a string is data", post_json(&ext, b"{\"extension\":\"5009\",\"displayName\":\"a\\u0000b\"}"), 204),
        case("raw NUL inside a JSON string", post_json(&ext, b"{\"extension\":\"50\x0010\"}"), 412),
        case("raw NUL as the whole body", post_json(&ext, b"\0"), 412),
        case("invalid UTF-8 inside a JSON string", post_json(&ext, b"{\"extension\":\"\xff\xfe\"}"), 412),
        case("lone surrogate escape", post_json(&ext, b"{\"extension\":\"\\ud800\"}"), 412),
        case("UTF-8 byte-order mark", post_json(&ext, b"\xef\xbb\xbf{\"extension\":\"5011\"}"), 412),
        case("id with a slash (would alias a scope)", post_json(&coll, b"{\"id\":\"x/users/u\",\"slug\":\"evil\",\"name\":\"e\"}"), 412),
        case("id with a NUL", post_json(&ext, b"{\"id\":\"a\\u0000\",\"extension\":\"5012\"}"), 412),
        case("trailing garbage after JSON", post_json(&ext, b"{\"extension\":\"5013\"} x"), 412),
        case("two JSON documents", post_json(&ext, b"{\"extension\":\"5014\"}{}"), 412),
        // --- Content types and bodies where none belong ---
        case("no Content-Type, JSON body", req("POST", &ext, &[], b"{\"extension\":\"5015\"}"), 204),
        case("text/plain Content-Type, JSON body", req("POST", &ext, &[("Content-Type", "text/plain")], b"{\"extension\":\"5016\"}"), 204),
        case("form-encoded body", req("POST", &ext, &[("Content-Type", "application/x-www-form-urlencoded")], b"extension=5017"), 412),
        case("garbage Content-Type", req("POST", &ext, &[("Content-Type", "\x01;;;=")], b"{\"extension\":\"5018\"}"), 400),
        case("GET with a body", req("GET", &coll, &[("Content-Type", "application/json")], b"{\"junk\":true}"), 200),
        case("GET with a chunked body", chunked_get.into_bytes(), 200),
        case("DELETE with a body (unknown id)", req("DELETE", &format!("{coll}/nope"), &[], b"{}"), 404),
        case("Expect: 100-continue", req("POST", &ext, &[("Expect", "100-continue")], b"{\"extension\":\"5019\"}"), 204),
        case("HTTP/1.0 without Host", format!("GET {coll} HTTP/1.0\r\nAuthorization: {}\r\n\r\n", auth()).into_bytes(), 200),
    ]
}

#[tokio::test]
async fn hostile_requests_get_the_right_status_and_the_server_survives() {
    // Many cases send bad credentials on purpose: keep the lockout out of the way.
    let t = start_with(|c| c.auth_fail_limit = 1_000_000, None).await;
    let cs = t.core_server("default").await;
    let addr = t.handle.http_addr();
    let cases = cases(&cs);
    assert!(cases.len() >= 50, "{}", cases.len());
    let mut wrong = Vec::new();
    for c in cases {
        let got = send_raw(addr, c.bytes, c.half_close).await;
        if got != c.expect {
            wrong.push(format!(
                "{}: expected {:?}, got {:?}",
                c.name, c.expect, got
            ));
        }
        // The server still answers a normal request.
        let (s, _) = t.get("server/coreServers").await;
        assert_eq!(s.as_u16(), 200, "after {:?}", c.name);
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));

    // What the accepted hostile bodies stored.
    let list = expect(t.get(&format!("asterisk/{cs}/extensions")).await, 200, "");
    let by_ext = |e: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|x| x["extension"] == e)
            .cloned()
    };
    assert_eq!(
        by_ext("5008").unwrap()["id"],
        "dup",
        "the last duplicate key wins"
    );
    assert!(by_ext("5007").is_none());
    assert_eq!(by_ext("5009").unwrap()["displayName"], "a\u{0}b");
    assert_eq!(
        by_ext("5001").unwrap()["displayName"]
            .as_str()
            .unwrap()
            .len(),
        500_000
    );
    // Nothing of the refused bodies got in, and the evil core server does not exist.
    for refused in [
        "5003", "5004", "5005", "5006", "5011", "5012", "5013", "5014", "5017",
    ] {
        assert!(by_ext(refused).is_none(), "{refused} must not be stored");
    }
    let (s, v) = t.get("server/coreServers").await;
    assert_eq!(s.as_u16(), 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
}
