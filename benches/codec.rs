//! Micro-benchmarks of the wire formats (stable Rust, no harness):
//!
//! - DATA encoding throughput ([`DataEncoder::encode`] in 64 KiB chunks, as the session sends) on a
//!   100 MB message, with CRLF line endings and with bare LF line endings; target ≥ 1 GB/s;
//! - [`normalized_len`] (the `SIZE=` value) on the same input;
//! - [`parse_reply`] rate on a one-line reply and on a ten-line EHLO reply.
//!
//! ```text
//! cargo bench --bench codec              # or: scripts/bench.sh (runs it too)
//! SMTPCHECK_BENCH_MB=20 cargo bench --bench codec
//! ```
//!
//! Each figure is the median of several timed rounds after a warm-up round.

use smtpcheck::internals::{normalized_len, parse_reply, DataEncoder, Parsed};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The chunk size the session encodes and writes at a time.
const CHUNK: usize = 64 * 1024;
/// Timed rounds per measurement (after one warm-up round).
const ROUNDS: usize = 7;

fn main() {
    let mb: usize = std::env::var("SMTPCHECK_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| (1..=2000).contains(&n))
        .unwrap_or(100);
    let crlf = message(mb * 1_000_000, b"\r\n");
    let lf = message(mb * 1_000_000, b"\n");
    println!("codec benchmarks ({mb} MB messages, median of {ROUNDS} rounds)");

    for (name, input) in [("CRLF", &crlf), ("LF", &lf)] {
        let mut out = Vec::with_capacity(CHUNK + CHUNK / 8);
        let mut written = 0usize;
        let t = median(|| {
            let mut enc = DataEncoder::new();
            written = 0;
            for chunk in input.chunks(CHUNK) {
                out.clear();
                enc.encode(chunk, &mut out);
                written += black_box(&out).len();
            }
            out.clear();
            enc.finish(&mut out);
            written += out.len();
        });
        println!(
            "  DataEncoder::encode, {name:4} line endings: {:7.2} GB/s  ({:.1} ms for {} bytes in, {written} out)",
            gbps(input.len(), t),
            ms(t),
            input.len()
        );
    }
    for (name, input) in [("CRLF", &crlf), ("LF", &lf)] {
        let mut n = 0;
        let t = median(|| n = normalized_len(black_box(input)));
        println!(
            "  normalized_len,      {name:4} line endings: {:7.2} GB/s  ({:.1} ms, {n} octets)",
            gbps(input.len(), t),
            ms(t)
        );
    }

    let one_line = b"250 2.1.5 Ok\r\n".to_vec();
    let ehlo = b"250-mx.example.com Hello client.example.org [192.0.2.1]\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250 SMTPUTF8\r\n".to_vec();
    for (name, reply) in [("1-line reply", &one_line), ("10-line EHLO", &ehlo)] {
        let n = 200_000;
        let t = median(|| {
            for _ in 0..n {
                match parse_reply(black_box(reply)) {
                    Ok(Parsed::Complete(r, used)) => {
                        black_box((r, used));
                    }
                    other => panic!("benchmark reply did not parse: {other:?}"),
                }
            }
        });
        let per = t.as_secs_f64() / n as f64;
        println!(
            "  parse_reply, {name:12}:          {:7.2} M replies/s  ({:.0} ns each, {:.0} MB/s)",
            1e-6 / per,
            per * 1e9,
            reply.len() as f64 / per / 1e6
        );
    }
}

/// A message of about `size` bytes: headers, a text part whose lines sometimes start with a dot,
/// and base64 lines of 76 characters, with `eol` line endings.
fn message(size: usize, eol: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(size + 256);
    for h in [
        "From: reports@bi.example.com",
        "To: user@domain.example",
        "Subject: benchmark",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"b\"",
        "",
        "--b",
        "Content-Type: text/plain",
        "",
    ] {
        m.extend_from_slice(h.as_bytes());
        m.extend_from_slice(eol);
    }
    for i in 0..200 {
        if i % 10 == 0 {
            m.extend_from_slice(b".a line that starts with a dot");
        } else {
            m.extend_from_slice(
                b"Quarterly figures, region by region, as of the end of the month.",
            );
        }
        m.extend_from_slice(eol);
    }
    for h in ["--b", "Content-Transfer-Encoding: base64", ""] {
        m.extend_from_slice(h.as_bytes());
        m.extend_from_slice(eol);
    }
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while m.len() < size {
        for _ in 0..76 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            m.push(alphabet[(state % 64) as usize]);
        }
        m.extend_from_slice(eol);
    }
    m.extend_from_slice(b"--b--");
    m.extend_from_slice(eol);
    m
}

/// The median duration of `ROUNDS` timed runs of `f`, after one untimed run.
fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn gbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}
