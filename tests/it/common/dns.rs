//! A real DNS server in-process for tests (hickory-server), and a DNS "black hole".
//!
//! Self-contained (it uses nothing else from `common`): the tests use it as
//! `crate::common::dns::TestDns`, and `examples/bench_domains.rs` includes this file with
//! `#[path = "../tests/it/common/dns.rs"] mod dns;`.
//!
//! ```ignore
//! let dns = TestDns::start("@ MX 10 mx1\nmx1 A 127.0.0.2\n");
//! let resolver = smtpcheck::internals::Resolver::new(Some(dns.addr()), Duration::from_secs(2)).unwrap();
//! ```
//!
//! Zone text is standard master-file syntax. The origin is `test.` unless the text sets
//! `$ORIGIN`; relative names are relative to it; the TTL defaults to 60 (`$TTL` overrides it).
//! When the text has no SOA record at the origin, one is added (the server refuses a zone
//! without one). Names outside the zone get REFUSED, names in the zone that do not exist
//! NXDOMAIN, existing names without the asked type an empty NOERROR. Use loopback addresses
//! only (127.0.0.0/8, ::1).

#![allow(dead_code)] // not every user needs every helper

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use hickory_server::Server;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The zone origin used when the text sets none.
pub const DEFAULT_ORIGIN: &str = "test.";

/// An authoritative DNS server for one zone on `127.0.0.1`, UDP and TCP on the same port, running
/// on its own thread and tokio runtime. Stopped when dropped.
pub struct TestDns {
    addr: SocketAddr,
    origin: Name,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestDns {
    /// Parses `zone_text` and serves it. Panics (with the parser's message) on a bad zone.
    pub fn start(zone_text: &str) -> TestDns {
        TestDns::start_zones(&[zone_text])
    }

    /// Serves several zones (each text sets its own `$ORIGIN`, else `test.`); [`TestDns::origin`]
    /// is the first one's. A zone's answers carry no additional records from another zone, so
    /// MX hosts in a second zone keep an MX answer small whatever their address records.
    pub fn start_zones(zone_texts: &[&str]) -> TestDns {
        let mut catalog = Catalog::new();
        let mut first = None;
        for zone_text in zone_texts {
            let (origin, handler) = zone(zone_text);
            catalog.upsert(LowerName::new(&origin), vec![Arc::new(handler)]);
            first.get_or_insert(origin);
        }
        let origin = first.unwrap_or_else(|| Name::from_ascii(DEFAULT_ORIGIN).expect("origin"));
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("udp local addr");
        udp.set_nonblocking(true).expect("nonblocking udp");
        tcp.set_nonblocking(true).expect("nonblocking tcp");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-dns".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("test DNS runtime");
                runtime.block_on(async move {
                    let mut server = Server::new(catalog);
                    server.register_socket(
                        tokio::net::UdpSocket::from_std(udp).expect("tokio udp socket"),
                    );
                    server.register_listener(
                        tokio::net::TcpListener::from_std(tcp).expect("tokio tcp listener"),
                        Duration::from_secs(5),
                        32,
                    );
                    let _ = ready_tx.send(());
                    // Serve until told to stop (or until the TestDns is gone).
                    let _ = stopped.await;
                    drop(server);
                });
                // Dropping the runtime cancels the server's tasks and closes its sockets.
                runtime.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawn test DNS thread");
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("test DNS server did not start");
        TestDns {
            addr,
            origin,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The server's address (UDP and TCP listen on it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone's origin (`test.` unless the zone text set another).
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// A UDP and TCP port on `127.0.0.1` that accepts queries and never answers: UDP datagrams
    /// are received by nobody, TCP connections are queued by the kernel but never accepted or read.
    /// Keep the returned value alive for as long as the port should stay a black hole.
    pub fn black_hole() -> BlackHole {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("udp local addr");
        BlackHole {
            addr,
            _udp: udp,
            _tcp: tcp,
        }
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A port that swallows DNS queries (see [`TestDns::black_hole`]).
pub struct BlackHole {
    addr: SocketAddr,
    _udp: UdpSocket,
    _tcp: TcpListener,
}

impl BlackHole {
    /// The address to point a resolver at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A UDP socket and a TCP listener on the same `127.0.0.1` port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
        let addr = udp.local_addr().expect("udp local addr");
        if let Ok(tcp) = TcpListener::bind(addr) {
            return (udp, tcp);
        }
    }
    panic!("could not bind UDP and TCP on the same 127.0.0.1 port");
}

/// Parses one zone's text into its origin and handler (an SOA added when it has none).
fn zone(zone_text: &str) -> (Name, InMemoryZoneHandler) {
    let default_origin = Name::from_ascii(DEFAULT_ORIGIN).expect("default origin");
    // A default TTL, so records may leave it out; a `$TTL` in the text overrides it.
    let text = format!("$TTL 60\n{zone_text}");
    let (origin, mut records) = Parser::new(text, None, Some(default_origin))
        .parse()
        .unwrap_or_else(|e| panic!("TestDns: bad zone text: {e}\n{zone_text}"));
    let soa_key = RrKey::new(LowerName::new(&origin), RecordType::SOA);
    if let std::collections::btree_map::Entry::Vacant(entry) = records.entry(soa_key) {
        let soa = SOA::new(
            Name::from_ascii("ns")
                .unwrap()
                .append_domain(&origin)
                .unwrap(),
            Name::from_ascii("hostmaster")
                .unwrap()
                .append_domain(&origin)
                .unwrap(),
            1,
            3600,
            600,
            86400,
            60,
        );
        let mut set = RecordSet::new(origin.clone(), RecordType::SOA, 1);
        set.insert(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
        entry.insert(set);
    }
    let handler: InMemoryZoneHandler =
        InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)
            .unwrap_or_else(|e| panic!("TestDns: zone rejected: {e}"));
    (origin, handler)
}
