//! A loopback SMTP server to try smtpcheck against (the examples in README were made with it).
//! It accepts every message, refuses recipients whose address contains `nobody` (550 5.1.1) and
//! defers those containing `later` (451 4.7.1), prints what each session sent (commands and
//! messages), and runs until interrupted or for the seconds given.
//!
//! ```text
//! cargo run --example sink -- 2525          # listen on 127.0.0.1:2525 until Ctrl-C
//! cargo run --example sink -- 2525 60       # ... for 60 seconds
//! smtpcheck send --smart-host 127.0.0.1:2525 --from me@example.com --to you@example.com
//! ```

use smtpcheck_sink::{unstuff, Action, Script, Sink};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().map(|p| p.parse()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("usage: sink [PORT [SECONDS]]");
            return ExitCode::from(2);
        }
    };
    let seconds: Option<u64> = args.next().and_then(|s| s.parse().ok());
    let script = Script::default()
        .rcpt_for(
            "nobody",
            Action::reply("550 5.1.1 Recipient address rejected: User unknown"),
        )
        .rcpt_for(
            "later",
            Action::reply("451 4.7.1 Greylisted, please try again later"),
        );
    let sink = match Sink::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), script) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sink: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("sink: listening on {}", sink.addr());
    // Show each session's commands and messages as they arrive.
    let deadline = seconds.map(|s| std::time::Instant::now() + Duration::from_secs(s));
    let mut shown = 0;
    while deadline.is_none_or(|d| std::time::Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(200));
        let sessions = sink.sessions();
        for log in sessions.iter().skip(shown) {
            println!("sink: session {}: {}", shown + 1, log.commands.join(" | "));
            for m in &log.messages {
                println!("sink: message as received (dot-stuffing undone):");
                print!("{}", String::from_utf8_lossy(&unstuff(m)));
            }
            shown += 1;
        }
    }
    ExitCode::SUCCESS
}
