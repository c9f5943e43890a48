//! The floor for a whole-process check: the same SMTP session smtpcheck runs (connect, greeting,
//! EHLO, MAIL, RCPT, DATA with the message, QUIT), repeated in one already-running process through
//! smtpcheck's own session code, so no process start, argument parsing, message loading or report
//! is counted. Prints the median, minimum and maximum time per session, the median of each step,
//! and every session's time (for combining several runs).
//!
//! ```text
//! cargo run --release --example bench_floor -- 127.0.0.1:2525 examples/report.eml user@interop.test 50
//! ```
//!
//! Arguments: SERVER (IP:PORT, a loopback address), EML, RECIPIENT, and RUNS (1-10000, default 50).
//! TLS is off. Used by `scripts/bench.sh`; exits 1 when a session does not deliver.

use smtpcheck::internals::message::{self, Envelope};
use smtpcheck::internals::{attempt, Helo, SessionOptions, Silent, Target};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, eml, rcpt, rest @ ..] = args.as_slice() else {
        return Err("usage: bench_floor SERVER(IP:PORT) EML RECIPIENT [RUNS]".into());
    };
    let server: SocketAddr = server
        .parse()
        .map_err(|e| format!("bad server {server:?}: {e}"))?;
    if !server.ip().is_loopback() {
        return Err(format!("{server} is not a loopback address"));
    }
    let runs: usize = match rest.first() {
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| format!("RUNS must be 1-10000, got {n:?}"))?,
        None => 50,
    };
    let message = message::load(Path::new(eml), u64::MAX).map_err(|e| e.to_string())?;
    let envelope =
        Envelope::resolve(&message, None, std::slice::from_ref(rcpt)).map_err(|e| e.to_string())?;
    let opts = SessionOptions {
        helo: Helo::Auto(None),
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(30),
        quit_after: None,
        tls: Default::default(),
        auth: None,
        dsn: Default::default(),
    };
    let target = Target {
        host: server.ip().to_string(),
        address: server.ip(),
        port: server.port(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut times = Vec::with_capacity(runs);
    // Per step: (stage, milliseconds of each run), in the order of the steps.
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    runtime.block_on(async {
        // One untimed session first (connection set-up paths, page faults).
        for i in 0..=runs {
            let started = Instant::now();
            let result = attempt(&target, &opts, &message, &envelope, &Silent).await;
            let took = started.elapsed();
            if let Some(f) = &result.failure {
                return Err(format!("session {i} did not deliver: {}", f.reason));
            }
            if i > 0 {
                times.push(took);
                for (k, step) in result.attempt.steps.iter().enumerate() {
                    if steps.len() <= k {
                        steps.push((step.stage.to_string(), Vec::new()));
                    }
                    steps[k].1.push(step.elapsed_ms);
                }
            }
        }
        Ok(())
    })?;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "floor: {runs} sessions to {server} with {} ({} bytes): median {:.2} ms, min {:.2} ms, max {:.2} ms",
        eml,
        message.size(),
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
    let medians: Vec<String> = steps
        .iter_mut()
        .map(|(stage, t)| {
            t.sort_by(f64::total_cmp);
            format!("{stage} {:.2}", t[t.len() / 2])
        })
        .collect();
    println!("  median per step (ms): {}", medians.join(", "));
    let all: Vec<String> = times.iter().map(|&t| format!("{:.3}", ms(t))).collect();
    println!("  sessions (ms): {}", all.join(" "));
    Ok(())
}
