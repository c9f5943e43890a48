//! The DNS and routing-plan layer of direct mode against a real (in-process) DNS server.

use crate::common::dns::TestDns;
use smtpcheck::internals::{
    plan_domain, AddrAnswer, FailureClass, Family, MxAnswer, MxRecord, Resolver, RoutePlan, Stage,
    IMPLICIT_MX_NOTE,
};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(2);

const ZONE: &str = r#"
$ORIGIN test.
$TTL 60
ordered     MX 20 mx2
ordered     MX 10 MX1.test.
ordered     MX 30 mx3
mx1         A 127.0.0.2
mx2         A 127.0.0.3
mx3         A 127.0.0.4
equal       MX 10 mx1
equal       MX 10 mx2
equal       MX 20 mx3
implicit    A 127.0.0.5
implicit    AAAA ::1
implicit    TXT "no MX here"
bare        TXT "no MX, no address"
nullmx      MX 0 .
noaddr      MX 10 ghost
noaddr      MX 20 nowhere
noaddr      MX 30 mx1
ghost       TXT "a name without address records"
allbad      MX 10 ghost
allbad      MX 20 nowhere
dual        MX 10 dualhost
dualhost    A 127.0.0.6
dualhost    A 127.0.0.7
dualhost    AAAA ::1
v6only      MX 10 v6host
v6host      AAAA ::1
shared      MX 10 mx1
shared      MX 20 alias1
alias1      A 127.0.0.2
"#;

fn server() -> (TestDns, Resolver) {
    let dns = TestDns::start(ZONE);
    let resolver = Resolver::new(Some(dns.addr()), TIMEOUT).expect("resolver");
    (dns, resolver)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn target_hosts(plan: &RoutePlan) -> Vec<&str> {
    plan.targets.iter().map(|t| t.host.as_str()).collect()
}

fn target_ips(plan: &RoutePlan) -> Vec<IpAddr> {
    plan.targets.iter().map(|t| t.address).collect()
}

fn only_loopback(plan: &RoutePlan) {
    for t in &plan.targets {
        assert!(t.address.is_loopback(), "non-loopback target {t:?}");
    }
}

#[tokio::test]
async fn mx_records_come_back_and_are_planned_by_preference() {
    let (_dns, resolver) = server();
    match resolver.mx("ordered.test").await {
        MxAnswer::Records(records) => {
            let mut got = records.clone();
            got.sort_by_key(|r| r.preference);
            assert_eq!(
                got,
                vec![
                    MxRecord {
                        preference: 10,
                        host: "mx1.test".into()
                    },
                    MxRecord {
                        preference: 20,
                        host: "mx2.test".into()
                    },
                    MxRecord {
                        preference: 30,
                        host: "mx3.test".into()
                    },
                ]
            );
        }
        other => panic!("expected records, got {other:?}"),
    }
    // Trailing dot and case do not matter.
    assert!(matches!(
        resolver.mx("ORDERED.test.").await,
        MxAnswer::Records(r) if r.len() == 3
    ));

    let plan = plan_domain(&resolver, "Ordered.Test.", Family::Any, 2525, 1).await;
    assert_eq!(plan.domain, "ordered.test");
    assert!(plan.failure.is_none(), "{plan:?}");
    assert!(plan.note.is_none());
    assert_eq!(target_hosts(&plan), ["mx1.test", "mx2.test", "mx3.test"]);
    assert_eq!(
        target_ips(&plan),
        [ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")]
    );
    assert!(plan.targets.iter().all(|t| t.port == 2525));
    let prefs: Vec<u16> = plan.mx.iter().map(|m| m.preference).collect();
    assert_eq!(prefs, [10, 20, 30]);
    assert!(plan.mx.iter().all(|m| m.note.is_none()));
}

#[tokio::test]
async fn equal_preferences_take_turns_first() {
    let (_dns, resolver) = server();
    let mut first = HashSet::new();
    for seed in 0..40 {
        let plan = plan_domain(&resolver, "equal.test", Family::Any, 25, seed).await;
        assert_eq!(plan.targets.len(), 3, "{plan:?}");
        // The less preferred host is always last.
        assert_eq!(plan.targets[2].host, "mx3.test");
        first.insert(plan.targets[0].host.clone());
        // Deterministic for a seed.
        let again = plan_domain(&resolver, "equal.test", Family::Any, 25, seed).await;
        assert_eq!(target_hosts(&plan), target_hosts(&again));
    }
    let want: HashSet<String> = ["mx1.test".to_string(), "mx2.test".to_string()].into();
    assert_eq!(first, want);
}

#[tokio::test]
async fn no_mx_means_implicit_mx() {
    let (_dns, resolver) = server();
    assert_eq!(resolver.mx("implicit.test").await, MxAnswer::NoRecords);
    let plan = plan_domain(&resolver, "implicit.test", Family::Any, 25, 0).await;
    assert!(plan.failure.is_none(), "{plan:?}");
    assert_eq!(plan.note.as_deref(), Some(IMPLICIT_MX_NOTE));
    assert_eq!(plan.mx.len(), 1);
    assert_eq!(plan.mx[0].preference, 0);
    assert_eq!(plan.mx[0].host, "implicit.test");
    assert_eq!(target_hosts(&plan), ["implicit.test", "implicit.test"]);
    // A before AAAA.
    assert_eq!(target_ips(&plan), [ip("127.0.0.5"), ip("::1")]);
    only_loopback(&plan);

    // No MX and no address either: nowhere to deliver, permanently.
    let plan = plan_domain(&resolver, "bare.test", Family::Any, 25, 0).await;
    assert_eq!(plan.note.as_deref(), Some(IMPLICIT_MX_NOTE));
    assert!(plan.targets.is_empty());
    let failure = plan.failure.expect("failure");
    assert_eq!(failure.stage, Stage::Dns);
    assert_eq!(failure.class, FailureClass::Permanent);
}

#[tokio::test]
async fn null_mx_accepts_no_mail() {
    let (_dns, resolver) = server();
    assert_eq!(resolver.mx("nullmx.test").await, MxAnswer::NullMx);
    let plan = plan_domain(&resolver, "nullmx.test", Family::Any, 25, 0).await;
    assert!(plan.targets.is_empty());
    assert!(plan.mx.is_empty());
    let failure = plan.failure.expect("failure");
    assert_eq!(failure.stage, Stage::Dns);
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.reason, "domain accepts no mail (null MX, RFC 7505)");
    assert_eq!(failure.code, None);
    assert_eq!(failure.kind, Some(smtpcheck::internals::BreakKind::NullMx));
    assert!(plan.note.unwrap().contains("null MX"));
}

#[tokio::test]
async fn nxdomain_is_no_domain() {
    let (_dns, resolver) = server();
    assert_eq!(resolver.mx("nosuch.test").await, MxAnswer::NoDomain);
    assert_eq!(
        resolver.addresses("nosuch.test", Family::Any).await,
        AddrAnswer::NoDomain
    );
    let plan = plan_domain(&resolver, "nosuch.test", Family::Any, 25, 0).await;
    assert!(plan.targets.is_empty());
    let failure = plan.failure.expect("failure");
    assert_eq!(failure.stage, Stage::Dns);
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.reason, "domain does not exist (NXDOMAIN)");
}

#[tokio::test]
async fn a_silent_server_is_a_transient_failure_within_the_timeout() {
    let hole = TestDns::black_hole();
    let timeout = Duration::from_secs(1);
    let resolver = Resolver::new(Some(hole.addr()), timeout).expect("resolver");

    let started = Instant::now();
    let answer = resolver.mx("anything.test").await;
    let elapsed = started.elapsed();
    match &answer {
        MxAnswer::Failed { transient, reason } => {
            assert!(*transient, "{answer:?}");
            assert!(reason.contains("anything.test"), "{reason}");
            assert!(!reason.contains("Query {"), "debug dump in {reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );

    let started = Instant::now();
    let answer = resolver.addresses("anything.test", Family::Any).await;
    assert!(
        matches!(
            answer,
            AddrAnswer::Failed {
                transient: true,
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_secs(2));

    let started = Instant::now();
    let plan = plan_domain(&resolver, "anything.test", Family::Any, 25, 0).await;
    assert!(started.elapsed() < timeout + Duration::from_secs(2));
    assert!(plan.targets.is_empty());
    let failure = plan.failure.expect("failure");
    assert_eq!(failure.stage, Stage::Dns);
    assert_eq!(failure.class, FailureClass::Transient);
}

#[tokio::test]
async fn a_closed_port_is_a_transient_failure() {
    // Bind and release a port: nothing listens there afterwards.
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let timeout = Duration::from_secs(1);
    let resolver = Resolver::new(Some(addr), timeout).expect("resolver");
    let started = Instant::now();
    let answer = resolver.mx("anything.test").await;
    assert!(
        matches!(
            answer,
            MxAnswer::Failed {
                transient: true,
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_secs(2));
}

#[tokio::test]
async fn mx_hosts_without_addresses_are_noted_and_skipped() {
    let (_dns, resolver) = server();
    let plan = plan_domain(&resolver, "noaddr.test", Family::Any, 25, 0).await;
    assert!(plan.failure.is_none(), "{plan:?}");
    let names: Vec<&str> = plan.mx.iter().map(|m| m.host.as_str()).collect();
    assert_eq!(names, ["ghost.test", "nowhere.test", "mx1.test"]);
    assert_eq!(
        plan.mx[0].note.as_deref(),
        Some("no address records: skipped")
    );
    assert!(plan.mx[0].addresses.is_empty());
    let nowhere = plan.mx[1].note.as_deref().unwrap_or("");
    assert!(nowhere.contains("NXDOMAIN"), "{nowhere}");
    assert!(plan.mx[2].note.is_none());
    assert_eq!(target_hosts(&plan), ["mx1.test"]);
    assert_eq!(target_ips(&plan), [ip("127.0.0.2")]);

    // When no host has an address, there is nothing to try.
    let plan = plan_domain(&resolver, "allbad.test", Family::Any, 25, 0).await;
    assert!(plan.targets.is_empty());
    assert_eq!(plan.mx.len(), 2);
    assert!(plan.mx.iter().all(|m| m.note.is_some()));
    let failure = plan.failure.expect("failure");
    assert_eq!(failure.stage, Stage::Dns);
    assert_eq!(failure.class, FailureClass::Permanent);
    assert_eq!(failure.reason, "no MX host has an address");
}

#[tokio::test]
async fn an_address_shared_by_two_hosts_is_tried_once() {
    let (_dns, resolver) = server();
    let plan = plan_domain(&resolver, "shared.test", Family::Any, 25, 0).await;
    assert!(plan.failure.is_none(), "{plan:?}");
    assert_eq!(plan.mx.len(), 2);
    assert_eq!(target_hosts(&plan), ["mx1.test"]);
    assert!(plan.mx[1].note.is_some());
}

#[tokio::test]
async fn family_filtering() {
    let (_dns, resolver) = server();
    let any = plan_domain(&resolver, "dual.test", Family::Any, 25, 0).await;
    assert_eq!(
        target_ips(&any),
        [ip("127.0.0.6"), ip("127.0.0.7"), ip("::1")]
    );
    let v4 = plan_domain(&resolver, "dual.test", Family::V4, 25, 0).await;
    assert_eq!(target_ips(&v4), [ip("127.0.0.6"), ip("127.0.0.7")]);
    let v6 = plan_domain(&resolver, "dual.test", Family::V6, 25, 0).await;
    assert_eq!(target_ips(&v6), [ip("::1")]);
    for plan in [&any, &v4, &v6] {
        only_loopback(plan);
    }

    // -4 against an IPv6-only MX host: nothing to try.
    let plan = plan_domain(&resolver, "v6only.test", Family::V4, 25, 0).await;
    assert!(plan.targets.is_empty());
    assert!(plan.mx[0].note.is_some());
    let failure = plan.failure.expect("failure");
    assert!(
        failure.reason.starts_with("no MX host has an address"),
        "{}",
        failure.reason
    );
    let plan = plan_domain(&resolver, "v6only.test", Family::V6, 25, 0).await;
    assert_eq!(target_ips(&plan), [ip("::1")]);

    assert_eq!(
        resolver.addresses("v6host.test", Family::V4).await,
        AddrAnswer::NoRecords
    );
    assert_eq!(
        resolver.addresses("mx1.test", Family::V6).await,
        AddrAnswer::NoRecords
    );
    // Implicit MX follows the family too.
    let plan = plan_domain(&resolver, "implicit.test", Family::V6, 25, 0).await;
    assert_eq!(target_ips(&plan), [ip("::1")]);
}

#[tokio::test]
async fn ip_literals_need_no_lookup() {
    let (_dns, resolver) = server();
    assert_eq!(
        resolver.addresses("127.0.0.9", Family::Any).await,
        AddrAnswer::Addresses(vec![ip("127.0.0.9")])
    );
    assert_eq!(
        resolver.addresses("[::1]", Family::V6).await,
        AddrAnswer::Addresses(vec![ip("::1")])
    );
    assert_eq!(
        resolver.addresses("::1", Family::V4).await,
        AddrAnswer::NoRecords
    );
}

#[tokio::test]
async fn bad_names_and_foreign_zones_fail_without_hanging() {
    let (_dns, resolver) = server();
    assert!(matches!(
        resolver.mx("").await,
        MxAnswer::Failed {
            transient: false,
            ..
        }
    ));
    assert!(matches!(
        resolver.mx("a..b").await,
        MxAnswer::Failed {
            transient: false,
            ..
        }
    ));
    // The test server is authoritative for test. only and refuses anything else.
    let started = Instant::now();
    let answer = resolver.mx("example.com").await;
    assert!(matches!(answer, MxAnswer::Failed { .. }), "{answer:?}");
    assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2));
    if let MxAnswer::Failed { reason, .. } = answer {
        assert!(reason.contains("REFUSED"), "{reason}");
    }
}

#[test]
fn works_on_a_current_thread_runtime_built_like_the_binary() {
    let dns = TestDns::start(ZONE);
    // Built outside any runtime, as the CLI may do.
    let resolver = Resolver::new(Some(dns.addr()), TIMEOUT).expect("resolver");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plan = runtime.block_on(plan_domain(&resolver, "ordered.test", Family::Any, 25, 3));
    assert_eq!(target_hosts(&plan), ["mx1.test", "mx2.test", "mx3.test"]);
}

#[test]
fn the_system_resolver_can_be_built() {
    // Only construction: no lookups leave the machine in tests.
    if std::path::Path::new("/etc/resolv.conf").exists() {
        let resolver = Resolver::new(None, TIMEOUT);
        assert!(resolver.is_ok(), "{resolver:?}");
    }
    assert!(Resolver::new(None, Duration::ZERO).is_err());
}

#[tokio::test]
async fn special_use_names_are_answered_without_asking_the_server() {
    // hickory answers RFC 6761 names itself: even a server that never answers is not asked.
    let hole = TestDns::black_hole();
    let resolver = Resolver::new(Some(hole.addr()), Duration::from_secs(1)).expect("resolver");
    let started = Instant::now();
    assert_eq!(resolver.mx("mail.invalid").await, MxAnswer::NoDomain);
    let plan = plan_domain(&resolver, "localhost", Family::Any, 25, 0).await;
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(plan.note.as_deref(), Some(IMPLICIT_MX_NOTE));
    assert_eq!(target_ips(&plan), [ip("127.0.0.1"), ip("::1")]);
}
