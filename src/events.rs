//! Progress while a check runs: one event type, and the receivers of it.
//!
//! The session, the delivery loop and the route planner report what happens as [`Event`]s; the
//! live text transcript and the `--log` file receive them. Nothing here prints. A receiver
//! matches on the event, so a new variant is a compile error in every receiver until it decides
//! what to do with it, and [`Tee`] passes every event on whatever it is.

use crate::plan::{RoutePlan, Target};
use crate::transcript::{Stage, Step, TlsInfo};

/// Something that happened while a check runs.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A connection attempt to this target is starting.
    AttemptStarted(&'a Target),
    /// A step is starting: `sent` is the command line about to be written (None for connect and
    /// greeting); for the message step, `octets` is the size of the message being sent.
    StepStarted {
        /// The step's stage.
        stage: Stage,
        /// The command line as it will be shown (secrets redacted).
        sent: Option<&'a str>,
        /// The message size, on the message step.
        octets: Option<u64>,
    },
    /// A step finished, with its reply or error.
    StepFinished(&'a Step),
    /// The DNS answers for a domain are in (direct mode).
    RoutePlanned(&'a RoutePlan),
    /// The attempt failed in a way that allows trying the next address; the text says what failed.
    MovingOn(&'a str),
    /// A TLS handshake completed: the negotiated parameters and the certificate verdict.
    TlsEstablished(&'a TlsInfo),
    /// Something worth a line in the transcript that is not a step (e.g. STARTTLS not offered).
    Note(&'a str),
}

/// Receives the events of a check (the text renderer prints from them; tests may record).
pub trait Events: Sync {
    /// Handles one event.
    fn on(&self, event: &Event<'_>);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Events for Silent {
    fn on(&self, _event: &Event<'_>) {}
}

/// Passes every event to each of several receivers, in order (the live printer and the log).
pub struct Tee(pub Vec<Box<dyn Events>>);

impl Events for Tee {
    fn on(&self, event: &Event<'_>) {
        for receiver in &self.0 {
            receiver.on(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records a name for every event it gets.
    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    impl Events for Record {
        fn on(&self, event: &Event<'_>) {
            let name = match event {
                Event::AttemptStarted(t) => format!("attempt {}", t.host),
                Event::StepStarted { stage, .. } => format!("start {stage}"),
                Event::StepFinished(s) => format!("done {}", s.stage),
                Event::RoutePlanned(p) => format!("plan {}", p.domain),
                Event::MovingOn(why) => format!("next {why}"),
                Event::TlsEstablished(t) => format!("tls {}", t.version),
                Event::Note(text) => format!("note {text}"),
            };
            if let Ok(mut v) = self.0.lock() {
                v.push(name);
            }
        }
    }

    #[test]
    fn tee_passes_on_every_event_to_every_receiver() {
        let a = std::sync::Arc::new(Record::default());
        struct Share(std::sync::Arc<Record>);
        impl Events for Share {
            fn on(&self, event: &Event<'_>) {
                self.0.on(event)
            }
        }
        let tee = Tee(vec![Box::new(Share(a.clone())), Box::new(Share(a.clone()))]);
        let target = Target {
            host: "mx.test".into(),
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 25,
        };
        tee.on(&Event::AttemptStarted(&target));
        tee.on(&Event::StepStarted {
            stage: Stage::Ehlo,
            sent: Some("EHLO x"),
            octets: None,
        });
        tee.on(&Event::MovingOn("refused"));
        tee.on(&Event::Note("no STARTTLS"));
        let got = a.0.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(
            got,
            [
                "attempt mx.test",
                "attempt mx.test",
                "start ehlo",
                "start ehlo",
                "next refused",
                "next refused",
                "note no STARTTLS",
                "note no STARTTLS"
            ]
        );
    }
}
