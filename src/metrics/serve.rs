//! The metrics endpoint's HTTP: a request's head read within [`HEAD_TIME`] and [`HEAD_MAX`]
//! bytes and parsed by `httparse` (hyper's parser), one answer, the connection closed. A body is
//! never read, so no length a client declares is ever trusted; each connection has a thread of
//! its own, at most [`CLIENTS`] at once, so a slow or silent client holds up no one else, and
//! never the mirror. (tiny_http, used first, allocates a body's declared length when it drops an
//! unread one, so one request could abort the process, and waits without limit for a body that
//! never comes; its fix upstream, tiny-http#290, was closed unmerged.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

use super::All;

/// How long a client has to send its request's head, and to take the answer.
const HEAD_TIME: Duration = Duration::from_secs(2);
/// The longest request head read.
const HEAD_MAX: usize = 8 << 10;
/// Connections answered at once; more are closed unanswered.
const CLIENTS: usize = 16;
/// After an error of `accept` (no file descriptor left, say), the pause before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Answers every connection to `listener`, for the life of the process.
pub(super) fn accept(listener: &TcpListener, metrics: &Arc<All>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            std::thread::sleep(ACCEPT_PAUSE);
            continue;
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= CLIENTS {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let (metrics, count) = (metrics.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("metrics client".into())
            .spawn(move || {
                answer(stream, &metrics);
                count.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Reads one request's head and answers it; any failure just closes the connection.
fn answer(mut stream: TcpStream, metrics: &All) {
    let deadline = Instant::now() + HEAD_TIME;
    let Some(head) = read_head(&mut stream, deadline) else {
        return;
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(&head);
    let asked = match parsed {
        Ok(httparse::Status::Complete(_)) => request.method.zip(request.path),
        _ => None,
    };
    let (status, body) = reply(asked, metrics);
    let head_only = asked.is_some_and(|(method, _)| method == "HEAD");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        if status.starts_with("200") {
            CONTENT_TYPE
        } else {
            "text/plain; charset=utf-8"
        },
        body.len()
    );
    if !head_only {
        out.push_str(&body);
    }
    let _ = stream.set_write_timeout(Some(HEAD_TIME));
    if stream.write_all(out.as_bytes()).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    // What the client sent beyond the head is read (a little, briefly) before the close, so that
    // the close is not a reset that could lose the answer on its way.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = std::io::copy(&mut (&stream).take(64 << 10), &mut std::io::sink());
}

/// The request's head (with its blank line), if it came whole within `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
        head.extend_from_slice(&buf[..n]);
        // httparse says when the head is whole (its blank line came).
        let mut headers = [httparse::EMPTY_HEADER; 64];
        match httparse::Request::new(&mut headers).parse(&head) {
            Ok(httparse::Status::Complete(end)) => {
                head.truncate(end);
                return Some(head);
            }
            Ok(httparse::Status::Partial) => {}
            // Not HTTP: answered as a bad request.
            Err(_) => return Some(head),
        }
        if head.len() > HEAD_MAX {
            return None;
        }
    }
}

/// The status line's code and reason, and the body, for a request's method and target (none:
/// it was no HTTP request).
fn reply(asked: Option<(&str, &str)>, metrics: &All) -> (&'static str, String) {
    let Some((method, target)) = asked else {
        return ("400 Bad Request", "bad request\n".into());
    };
    if target.split('?').next() != Some("/metrics") {
        return (
            "404 Not Found",
            "not found: metrics are at /metrics\n".into(),
        );
    }
    if !matches!(method, "GET" | "HEAD") {
        return ("405 Method Not Allowed", "only GET\n".into());
    }
    ("200 OK", metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &[u8]) -> &'static str {
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut request = httparse::Request::new(&mut headers);
        let asked = match request.parse(head) {
            Ok(httparse::Status::Complete(_)) => request.method.zip(request.path),
            _ => None,
        };
        reply(asked, &All::new()).0
    }

    #[test]
    fn answers_by_method_and_path() {
        assert_eq!(status(b"GET /metrics HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(status(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), "200 OK");
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "404 Not Found");
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\n\r\n"),
            "405 Method Not Allowed"
        );
        for bad in [
            &b""[..],
            b"GET",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
        ] {
            assert_eq!(status(bad), "400 Bad Request");
        }
    }
}
