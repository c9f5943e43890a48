//! Concurrency across recipient domains: DOMAINS loopback SMTP sinks (127.0.0.2, 127.0.0.3, …, all on
//! one port), each answering every command after DELAY_MS (a distant server), an in-process DNS
//! zone giving domain `dI.test` the MX `mxI.test` → the I-th sink, and the smtpcheck binary run
//! against them in direct mode:
//!
//! - one domain;
//! - DOMAINS domains with `--concurrency DOMAINS` (target: within 1.3× of one domain's time);
//! - DOMAINS domains with `--concurrency 1` (serial, for comparison; one run);
//! - DOMAINS domains with `--concurrency DOMAINS` and BIG_EML (target: peak RSS under 40 MB).
//!
//! ```text
//! cargo run --release --example bench_domains -- target/release/smtpcheck examples/report.eml big.eml
//! ```
//!
//! Arguments: BIN, EML, BIG_EML, then optionally DOMAINS (1-200, default 50), DELAY_MS (0-1000,
//! default 100) and RUNS (1-20, default 3). Wall times are medians over RUNS; peak RSS comes from
//! `/usr/bin/time -f %M` when it is installed. Only loopback addresses are used. Used by
//! `scripts/bench.sh`; exits 1 when a run does not deliver to every recipient.

#[path = "../tests/it/common/dns.rs"]
mod dns;

use smtpcheck_sink::{Script, Sink};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_domains: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One measured case.
struct Measured {
    wall: Duration,
    rss_kb: Option<u64>,
}

fn arg<T: std::str::FromStr + PartialOrd>(
    args: &[String],
    i: usize,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| format!("argument {} out of range: {s:?}", i + 1)),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, eml, big, ..] = args.as_slice() else {
        return Err("usage: bench_domains BIN EML BIG_EML [DOMAINS] [DELAY_MS] [RUNS]".into());
    };
    let domains: usize = arg(&args, 3, 50, 1..=200)?;
    let delay = Duration::from_millis(arg(&args, 4, 100, 0..=1000)?);
    let runs: usize = arg(&args, 5, 3, 1..=20)?;
    for f in [bin, eml, big] {
        if !Path::new(f).is_file() {
            return Err(format!("{f}: no such file"));
        }
    }
    let zone: String = (1..=domains)
        .map(|i| format!("d{i} MX 10 mx{i}\nmx{i} A {}\n", sink_ip(i)))
        .collect();
    let dns = dns::TestDns::start(&zone);
    let all: Vec<String> = (1..=domains).map(|i| format!("user@d{i}.test")).collect();
    println!(
        "concurrency across domains: {domains} sinks on 127.0.0.2-{}, each reply delayed {} ms; DNS {}",
        sink_ip(domains),
        delay.as_millis(),
        dns.addr()
    );

    let case = |to: &[String], concurrency: usize, eml: &str, runs: usize| {
        // Fresh sinks for every case: they keep what they received.
        let (sinks, port) = start_sinks(domains, delay)?;
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(send(bin, eml, to, concurrency, dns.addr(), port)?);
        }
        drop(sinks);
        results.sort_by_key(|m| m.wall);
        let wall = results[results.len() / 2].wall;
        let rss_kb = results.iter().filter_map(|m| m.rss_kb).max();
        Ok::<Measured, String>(Measured { wall, rss_kb })
    };
    let one = case(&all[..1], domains, eml, runs)?;
    let many = case(&all, domains, eml, runs)?;
    let serial = case(&all, 1, eml, 1)?;
    let big_many = case(&all, domains, big, 1)?;

    let big_name = Path::new(big)
        .file_name()
        .map_or(big.clone(), |n| n.to_string_lossy().into_owned());
    let show = |label: &str, m: &Measured| {
        let rss = m
            .rss_kb
            .map_or("-".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        println!(
            "  {label:<50} {:>9.1} ms   peak RSS {rss}",
            m.wall.as_secs_f64() * 1e3
        );
    };
    show("1 domain", &one);
    show(
        &format!("{domains} domains, --concurrency {domains}"),
        &many,
    );
    show(
        &format!("{domains} domains, --concurrency 1 (serial)"),
        &serial,
    );
    show(
        &format!("{domains} domains, --concurrency {domains}, {big_name}"),
        &big_many,
    );
    let ratio = many.wall.as_secs_f64() / one.wall.as_secs_f64();
    println!(
        "  concurrent/one-domain ratio: {ratio:.2} (target <= 1.30: {}); serial/concurrent: {:.1}x",
        if ratio <= 1.3 { "met" } else { "NOT met" },
        serial.wall.as_secs_f64() / many.wall.as_secs_f64()
    );
    if let Some(kb) = big_many.rss_kb {
        let mib = kb as f64 / 1024.0;
        println!(
            "  peak RSS with {domains} sessions of {big_name}: {mib:.1} MiB (target < 40 MiB: {})",
            if mib < 40.0 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

/// The address of the `i`-th sink (1-based): 127.0.0.(i+1).
fn sink_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, (i + 1) as u8)
}

/// `n` sinks on the same port of 127.0.0.2, 127.0.0.3, …; a few tries for a port free on all.
fn start_sinks(n: usize, delay: Duration) -> Result<(Vec<Sink>, u16), String> {
    let script = Script {
        reply_delay: delay,
        ..Script::default()
    };
    let mut last_err = String::new();
    for _ in 0..20 {
        let first = Sink::bind(SocketAddr::new(IpAddr::V4(sink_ip(1)), 0), script.clone())
            .map_err(|e| format!("cannot start a sink on {}: {e}", sink_ip(1)))?;
        let port = first.addr().port();
        let mut sinks = vec![first];
        for i in 2..=n {
            match Sink::bind(
                SocketAddr::new(IpAddr::V4(sink_ip(i)), port),
                script.clone(),
            ) {
                Ok(s) => sinks.push(s),
                Err(e) => {
                    last_err = format!("{}:{port}: {e}", sink_ip(i));
                    break;
                }
            }
        }
        if sinks.len() == n {
            return Ok((sinks, port));
        }
    }
    Err(format!("no port free on all sink addresses ({last_err})"))
}

/// Runs `smtpcheck send` once (under `/usr/bin/time` for the peak RSS when it exists).
fn send(
    bin: &str,
    eml: &str,
    to: &[String],
    concurrency: usize,
    resolver: SocketAddr,
    port: u16,
) -> Result<Measured, String> {
    let time = Path::new("/usr/bin/time");
    let mut cmd = if time.is_file() {
        let mut c = Command::new(time);
        c.args(["-f", "%M", bin]);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(["send", "--eml", eml, "--to", &to.join(",")])
        .args(["--resolver", &resolver.to_string()])
        .args(["--port", &port.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args([
            "--tls",
            "off",
            "--format",
            "json",
            "--helo",
            "bench.example",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot run {bin}: {e}"))?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "{bin} send to {} domain(s) did not deliver ({}): {stderr}",
            to.len(),
            out.status
        ));
    }
    let rss_kb = if time.is_file() {
        stderr.lines().last().and_then(|l| l.trim().parse().ok())
    } else {
        None
    };
    Ok(Measured { wall, rss_kb })
}
