//! `smtpcheck sender`: SPF, DKIM, DMARC, iprev and blocklists against an in-process DNS server,
//! with DKIM-signed fixtures made here (and tampered copies), an ARC chain sealed here, an
//! RSA-1024 signature made by dkimpy, and the SPF and DKIM results cross-checked against pyspf
//! and dkimpy.

use crate::common::dns::TestDns;
use crate::common::{under_ci, Cmd, Run, TempDir};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The sending IP the checks are about (documentation range: data, never contacted).
const IP: &str = "192.0.2.10";
const OTHER_IP: &str = "198.51.100.1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rsa_key() -> RsaKey<Sha256> {
    use base64::Engine;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let pem = std::fs::read_to_string(root().join("tests/fixtures/dkim/rsa2048.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))).unwrap()
}

fn rsa_public() -> String {
    std::fs::read_to_string(root().join("tests/fixtures/dkim/rsa2048.pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// A TXT record's data in zone-file syntax: quoted strings of at most 250 characters.
fn txt(value: &str) -> String {
    value
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The zones: everything under `test.`, and the reverse zone of 192.0.2.0/24.
fn zones(ed25519_public: &str) -> (String, String) {
    let mut z = String::from("$ORIGIN test.\n");
    let mut add = |name: &str, value: &str| z.push_str(&format!("{name} TXT {}\n", txt(value)));
    add("ip4", "v=spf1 ip4:192.0.2.0/24 -all");
    add("soft", "v=spf1 ip4:203.0.113.1 ~all");
    add("neutral", "v=spf1 ?all");
    add("nospf", "hello world");
    add("inc", "v=spf1 include:inc1.test -all");
    add("inc1", "v=spf1 include:inc2.test -all");
    add("inc2", "v=spf1 ip4:192.0.2.10 -all");
    add("redir", "v=spf1 redirect=ip4.test");
    add("macro", "v=spf1 exists:%{i}._ip.macro.test -all");
    add("mlocal", "v=spf1 exists:%{l}.%{d} -all");
    let mut many = String::from("v=spf1");
    for n in 1..=11 {
        many.push_str(&format!(" include:l{n}.test"));
    }
    many.push_str(" -all");
    add("many", &many);
    for n in 1..=11 {
        add(&format!("l{n}"), "v=spf1 -all");
    }
    add(
        "void",
        "v=spf1 a:nx1.void.test a:nx2.void.test a:nx3.void.test -all",
    );
    add("void2", "v=spf1 a:nx1.void.test a:nx2.void.test -all");
    add("mx", "v=spf1 mx -all");
    add("a", "v=spf1 a -all");
    add("dup", "v=spf1 -all");
    add("dup", "v=spf1 +all");
    add("bad", "v=spf1 frobnicate -all");
    add("incnone", "v=spf1 include:nospf.test -all");
    add("ptr", "v=spf1 ptr -all");
    add("cidr", "v=spf1 a:a.test/24 -all");
    // DKIM keys.
    add(
        "rsa._domainkey.signed",
        &format!("v=DKIM1; k=rsa; p={}", rsa_public()),
    );
    add(
        "ed._domainkey.signed",
        &format!("v=DKIM1; k=ed25519; p={ed25519_public}"),
    );
    add("old._domainkey.signed", "v=DKIM1; k=rsa; p=");
    add("signed", "v=spf1 ip4:192.0.2.10 -all");
    // DMARC.
    add("_dmarc.signed", "v=DMARC1; p=reject");
    add("_dmarc.org", "v=DMARC1; p=reject; sp=quarantine; aspf=s");
    add("org", "v=spf1 ip4:192.0.2.10 -all");
    add("bounce.org", "v=spf1 ip4:192.0.2.10 -all");
    add("_dmarc.relaxed", "v=DMARC1; p=reject");
    add("bounce.relaxed", "v=spf1 ip4:192.0.2.10 -all");
    add("_dmarc.pct", "v=DMARC1; p=reject; pct=50");
    add("pct", "v=spf1 -all");
    add("_dmarc.monitor", "v=DMARC1; p=none");
    add("monitor", "v=spf1 -all");
    // A blocklist listing 192.0.2.10.
    add("10.2.0.192.bl", "listed for testing, see https://bl.test/");
    z.push_str(
        "192.0.2.10._ip.macro A 127.0.0.2\n\
         alice.mlocal A 127.0.0.2\n\
         mx MX 10 mail.mx.test.\n\
         mail.mx A 192.0.2.10\n\
         a A 192.0.2.10\n\
         host.ptr A 192.0.2.10\n\
         mail.signed A 192.0.2.10\n\
         10.2.0.192.bl A 127.0.0.2\n\
         other A 192.0.2.200\n",
    );
    let reverse = "$ORIGIN 2.0.192.in-addr.arpa.\n\
                   10 PTR host.ptr.test.\n\
                   10 PTR mail.signed.test.\n"
        .to_string();
    (z, reverse)
}

/// A message from `from`, with a List-Unsubscribe pair.
fn message(from: &str, body: &str) -> String {
    format!(
        "From: Reports <{from}>\r\n\
         To: someone@receiver.test\r\n\
         Subject: Monthly report\r\n\
         Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n\
         Message-ID: <report-1@signed.test>\r\n\
         List-Unsubscribe: <https://signed.test/unsubscribe/1>\r\n\
         List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {body}"
    )
}

const SIGNED: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

fn sign_rsa(msg: &str, selector: &str) -> String {
    let sig = DkimSigner::from_key(rsa_key())
        .domain("signed.test")
        .selector(selector)
        .headers(SIGNED)
        .sign(msg.as_bytes())
        .unwrap();
    format!("{}{msg}", sig.to_header())
}

fn sign_ed(msg: &str, pkcs8: &[u8]) -> String {
    let key = Ed25519Key::from_pkcs8_der(pkcs8).unwrap();
    let sig = DkimSigner::from_key(key)
        .domain("signed.test")
        .selector("ed")
        .headers(SIGNED)
        .sign(msg.as_bytes())
        .unwrap();
    format!("{}{msg}", sig.to_header())
}

/// The DNS server, the messages (signed, tampered) in a temp dir.
struct World {
    dns: TestDns,
    dir: TempDir,
    ed_pkcs8: Vec<u8>,
}

fn world() -> World {
    world_with("", &[])
}

/// The zones, with `extra` records under `test.` and `more` zones.
fn world_with(extra: &str, more: &[&str]) -> World {
    let ed_pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let ed_public = {
        use base64::Engine;
        let key = Ed25519Key::from_pkcs8_der(&ed_pkcs8).unwrap();
        base64::engine::general_purpose::STANDARD.encode(key.public_key())
    };
    let (mut forward, reverse) = zones(&ed_public);
    forward.push_str(extra);
    let mut all: Vec<&str> = vec![&forward, &reverse];
    all.extend(more);
    let dns = TestDns::start_zones(&all);
    World {
        dns,
        dir: TempDir::new("sender"),
        ed_pkcs8,
    }
}

impl World {
    fn write(&self, name: &str, text: &str) -> PathBuf {
        self.dir.write(name, text)
    }

    fn sender(&self, eml: &Path) -> Cmd {
        Cmd::new()
            .arg("sender")
            .arg("--eml")
            .arg(eml)
            .arg("--resolver")
            .arg(self.dns.addr().to_string())
            .arg("--dns-timeout")
            .arg("2s")
    }

    fn json(&self, eml: &Path, args: &[&str]) -> (Value, Run) {
        let run = self
            .sender(eml)
            .args(args)
            .arg("--format")
            .arg("json")
            .run();
        let v: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.dump()));
        crate::common::JsonSenderReport::check(&v);
        (v, run)
    }
}

/// One cross-check case: what smtpcheck is asked, and the same for the Python libraries.
struct Case {
    name: &'static str,
    kind: &'static str,
    ip: &'static str,
    sender: String,
    eml: Option<PathBuf>,
    expected: &'static str,
}

fn spf_case(name: &'static str, ip: &'static str, sender: &str, expected: &'static str) -> Case {
    Case {
        name,
        kind: "spf",
        ip,
        sender: sender.to_string(),
        eml: None,
        expected,
    }
}

fn cases(w: &World) -> Vec<Case> {
    let plain = message("reports@signed.test", "Totals attached.\r\n");
    let signed = sign_rsa(&plain, "rsa");
    let body_changed = signed.replace("Totals attached.", "Totals attached!");
    let header_changed = signed.replace("Subject: Monthly report", "Subject: Weekly report");
    let footer = format!("{signed}--\r\nSent by the report server\r\n");
    let ed = sign_ed(&plain, &w.ed_pkcs8);
    let revoked = sign_rsa(&plain, "old");
    let missing = sign_rsa(&plain, "gone");
    let dkim = |name: &'static str, file: &str, text: &str, expected: &'static str| Case {
        name,
        kind: "dkim",
        ip: IP,
        sender: "reports@signed.test".into(),
        eml: Some(w.write(file, text)),
        expected,
    };
    vec![
        spf_case("ip4 pass", IP, "a@ip4.test", "pass"),
        spf_case("ip4 fail", OTHER_IP, "a@ip4.test", "fail"),
        spf_case("softfail", IP, "a@soft.test", "softfail"),
        spf_case("neutral", IP, "a@neutral.test", "neutral"),
        spf_case("no record", IP, "a@nospf.test", "none"),
        spf_case("include chain pass", IP, "a@inc.test", "pass"),
        spf_case("include chain fail", OTHER_IP, "a@inc.test", "fail"),
        spf_case("redirect pass", IP, "a@redir.test", "pass"),
        spf_case("redirect fail", OTHER_IP, "a@redir.test", "fail"),
        spf_case("macro %{i} exists", IP, "a@macro.test", "pass"),
        spf_case("macro %{l} exists", IP, "alice@mlocal.test", "pass"),
        spf_case("macro %{l} void", IP, "bob@mlocal.test", "fail"),
        spf_case("more than 10 lookups", IP, "a@many.test", "permerror"),
        spf_case("three void lookups", IP, "a@void.test", "permerror"),
        spf_case("two void lookups", IP, "a@void2.test", "fail"),
        spf_case("mx", IP, "a@mx.test", "pass"),
        spf_case("a", IP, "a@a.test", "pass"),
        spf_case("a with /24", "192.0.2.99", "a@cidr.test", "pass"),
        spf_case("two records", IP, "a@dup.test", "permerror"),
        spf_case("unknown mechanism", IP, "a@bad.test", "permerror"),
        spf_case("include without record", IP, "a@incnone.test", "permerror"),
        spf_case("ptr", IP, "a@ptr.test", "pass"),
        dkim("rsa-sha256 2048 intact", "rsa.eml", &signed, "pass"),
        dkim("body changed", "body.eml", &body_changed, "fail"),
        dkim("header changed", "header.eml", &header_changed, "fail"),
        dkim("footer added", "footer.eml", &footer, "fail"),
        dkim("ed25519-sha256", "ed.eml", &ed, "pass"),
        dkim("revoked key", "revoked.eml", &revoked, "fail"),
        dkim("key not found", "missing.eml", &missing, "fail"),
    ]
}

/// smtpcheck's result for a case: the SPF result, or "pass"/"fail" for the first signature.
fn smtpcheck_result(w: &World, case: &Case, any_eml: &Path) -> String {
    match case.eml.as_deref() {
        None => {
            let (v, _) = w.json(any_eml, &["--ip", case.ip, "--from", &case.sender]);
            v["spf"]["result"].as_str().unwrap().to_string()
        }
        Some(eml) => {
            let (v, _) = w.json(eml, &["--ip", case.ip]);
            let r = v["dkim"][0]["result"].as_str().unwrap();
            if r == "pass" { "pass" } else { "fail" }.to_string()
        }
    }
}

/// The Python libraries' results, or None when they are missing (outside CI).
fn python_results(w: &World, cases: &[Case]) -> Option<Vec<String>> {
    let request = serde_json::json!({
        "server": w.dns.addr().ip().to_string(),
        "port": w.dns.addr().port(),
        "cases": cases.iter().map(|c| match &c.eml {
            None => serde_json::json!({"kind": "spf", "ip": c.ip, "sender": c.sender, "helo": "helo.test"}),
            Some(p) => serde_json::json!({"kind": "dkim", "eml": p}),
        }).collect::<Vec<_>>(),
    });
    let ci = under_ci();
    let child = Command::new("python3")
        .arg(root().join("scripts/crosscheck_auth.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(!ci, "python3 is required under CI: {e}");
            eprintln!("note: python3 cannot be run ({e}); skipping the cross-check");
            return None;
        }
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(request.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(
            !ci,
            "pyspf, dkimpy, dnspython and pynacl are required under CI (scripts/test.sh installs them): {why}"
        );
        eprintln!("note: {} — skipping the cross-check against pyspf and dkimpy (scripts/test.sh installs them)", why.trim());
        return None;
    }
    assert!(
        out.status.success(),
        "crosscheck_auth.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
    )
}

#[test]
fn spf_and_dkim_agree_with_pyspf_and_dkimpy() {
    let w = world();
    let cases = cases(&w);
    assert!(cases.len() >= 20);
    let any = w.write("any.eml", &message("reports@signed.test", "x\r\n"));
    let ours: Vec<String> = cases
        .iter()
        .map(|c| smtpcheck_result(&w, c, &any))
        .collect();
    let theirs = python_results(&w, &cases);
    let mut table = String::from("case | expected | smtpcheck | pyspf/dkimpy\n");
    let mut wrong = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let t = theirs
            .as_ref()
            .map(|t| t[i].as_str())
            .unwrap_or("(skipped)");
        table.push_str(&format!(
            "{} {} | {} | {} | {t}\n",
            c.kind, c.name, c.expected, ours[i]
        ));
        if ours[i] != c.expected || (theirs.is_some() && t != ours[i]) {
            wrong.push(c.name);
        }
    }
    eprintln!("{table}");
    assert!(wrong.is_empty(), "disagreement in {wrong:?}:\n{table}");
}

#[test]
fn spf_reports_the_record_the_mechanism_and_the_lookups() {
    let w = world();
    let eml = w.write("m.eml", &message("reports@signed.test", "x\r\n"));
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "a@inc.test"]);
    let spf = &v["spf"];
    assert_eq!(spf["record"], "v=spf1 include:inc1.test -all");
    assert_eq!(
        spf["mechanism"],
        "include:inc1.test (include:inc2.test (ip4:192.0.2.10 in inc2.test) in inc1.test)"
    );
    assert_eq!(spf["lookups"], 2);
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "a@many.test"]);
    assert_eq!(v["spf"]["result"], "permerror");
    assert_eq!(v["spf"]["lookups"], 11);
    assert!(v["next_steps"][0]
        .as_str()
        .unwrap()
        .contains("more than 10 DNS lookups"));
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "a@void.test"]);
    assert_eq!(v["spf"]["void_lookups"], 3);
    let (v, _) = w.json(
        &eml,
        &["--ip", IP, "--from", "a@ip4.test", "--helo", "a.test"],
    );
    assert_eq!(v["helo_spf"]["result"], "pass");
    assert_eq!(v["helo_spf"]["mechanism"], "a");
    let (v, _) = w.json(&eml, &["--ip", OTHER_IP, "--from", "a@soft.test"]);
    assert!(v["next_steps"][0]
        .as_str()
        .unwrap()
        .contains("add `ip4:198.51.100.1` to the SPF record of soft.test"));
}

#[test]
fn dkim_reasons_are_precise() {
    let w = world();
    let plain = message("reports@signed.test", "Totals attached.\r\n");
    let signed = sign_rsa(&plain, "rsa");
    let check = |name: &str, text: &str, result: &str, reason: &str| {
        let eml = w.write(name, text);
        let (v, _) = w.json(&eml, &["--ip", IP]);
        let k = &v["dkim"][0];
        assert_eq!(k["result"], result, "{name}: {k}");
        assert!(
            k["reason"].as_str().unwrap_or("").contains(reason),
            "{name}: {k}"
        );
        assert_eq!(k["domain"], "signed.test");
        v
    };
    let v = check("ok.eml", &signed, "pass", "");
    assert_eq!(v["dkim"][0]["algorithm"], "rsa-sha256");
    let signed_headers = v["dkim"][0]["signed_headers"].as_array().unwrap();
    assert!(signed_headers.iter().any(|h| h == "list-unsubscribe-post"));
    assert_eq!(v["bulk"]["checks"]["list_unsubscribe_signed"], true);
    let v = check(
        "footer.eml",
        &format!("{signed}--\r\nfooter\r\n"),
        "neutral",
        "body hash mismatch",
    );
    assert!(v["next_steps"].as_array().unwrap().iter().any(|s| s
        .as_str()
        .unwrap()
        .contains("the body was changed after signing")));
    check(
        "subject.eml",
        &signed.replace("Monthly", "Weekly"),
        "fail",
        "signed header field was changed",
    );
    check(
        "revoked.eml",
        &sign_rsa(&plain, "old"),
        "permerror",
        "key revoked",
    );
    check(
        "gone.eml",
        &sign_rsa(&plain, "gone"),
        "permerror",
        "key not found",
    );
    let v = check("ed.eml", &sign_ed(&plain, &w.ed_pkcs8), "pass", "");
    assert_eq!(v["dkim"][0]["algorithm"], "ed25519-sha256");
}

#[test]
fn dmarc_pass_accepts_and_exits_0() {
    let w = world();
    let signed = sign_rsa(&message("reports@signed.test", "Totals.\r\n"), "rsa");
    let eml = w.write("ok.eml", &signed);
    let (v, run) = w.json(
        &eml,
        &[
            "--ip",
            IP,
            "--from",
            "bounce@signed.test",
            "--helo",
            "mail.signed.test",
        ],
    );
    run.assert_exit(0);
    assert_eq!(v["dmarc"]["result"], "pass");
    assert_eq!(v["dmarc"]["spf_aligned"], true);
    assert_eq!(v["dmarc"]["dkim_aligned"], true);
    assert_eq!(v["dmarc"]["policy"], "reject");
    assert_eq!(v["iprev"]["result"], "pass");
    assert_eq!(v["iprev"]["helo_matches_ptr"], true);
    assert!(v["verdict"].as_str().unwrap().contains("would accept"));
    assert_eq!(v["next_steps"].as_array().unwrap().len(), 0, "{v}");
    let text = w
        .sender(&eml)
        .args([
            "--ip",
            IP,
            "--from",
            "bounce@signed.test",
            "--helo",
            "mail.signed.test",
        ])
        .run();
    text.assert_exit(0);
    assert!(text
        .stdout
        .contains("Verdict: a receiver enforcing DMARC would accept"));
}

#[test]
fn dmarc_fail_under_reject_exits_16_with_next_steps() {
    let w = world();
    // Unsigned, sent from an IP the SPF record does not list.
    let eml = w.write("u.eml", &message("reports@signed.test", "x\r\n"));
    let (v, run) = w.json(&eml, &["--ip", OTHER_IP]);
    run.assert_exit(40);
    assert_eq!(v["dmarc"]["result"], "fail");
    assert_eq!(v["dmarc"]["disposition"], "reject");
    assert!(v["verdict"].as_str().unwrap().contains("would reject"));
    let steps: Vec<&str> = v["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(steps[0].contains("add `ip4:198.51.100.1` to the SPF record of signed.test"));
    assert!(steps
        .iter()
        .any(|s| s.contains("sign the message with DKIM with d=signed.test")));
}

#[test]
fn dmarc_org_domain_sp_strict_relaxed_and_pct() {
    let w = world();
    // sub.org.test has no record: the organizational domain's applies, with sp=quarantine.
    let eml = w.write("o.eml", &message("r@sub.org.test", "x\r\n"));
    let (v, run) = w.json(&eml, &["--ip", OTHER_IP]);
    assert_eq!(v["dmarc"]["record_domain"], "org.test");
    assert_eq!(v["dmarc"]["org_domain"], "org.test");
    assert_eq!(v["dmarc"]["subdomain_policy"], "quarantine");
    assert_eq!(v["dmarc"]["disposition"], "quarantine");
    run.assert_exit(40);
    // aspf=s: SPF passes for bounce.org.test but is not aligned with org.test.
    let eml = w.write("s.eml", &message("r@org.test", "x\r\n"));
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "b@bounce.org.test"]);
    assert_eq!(v["spf"]["result"], "pass");
    assert_eq!(v["dmarc"]["aspf"], "strict");
    assert_eq!(v["dmarc"]["spf_aligned"], false);
    assert_eq!(v["dmarc"]["result"], "fail");
    // Relaxed (the default): the same shape passes.
    let eml = w.write("r.eml", &message("r@relaxed.test", "x\r\n"));
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "b@bounce.relaxed.test"]);
    assert_eq!(v["dmarc"]["spf_aligned"], true);
    assert_eq!(v["dmarc"]["result"], "pass");
    // pct=50.
    let eml = w.write("p.eml", &message("r@pct.test", "x\r\n"));
    let (v, _) = w.json(&eml, &["--ip", IP]);
    assert_eq!(v["dmarc"]["pct"], 50);
    assert!(v["dmarc"]["reason"].as_str().unwrap().contains("pct=50"));
    // p=none: delivered, but exit 17.
    let eml = w.write("n.eml", &message("r@monitor.test", "x\r\n"));
    let (v, run) = w.json(&eml, &["--ip", IP]);
    assert_eq!(v["dmarc"]["disposition"], "none");
    run.assert_exit(41);
    // No DMARC record anywhere: a next step says to publish one.
    let eml = w.write("x.eml", &message("r@ip4.test", "x\r\n"));
    let (v, run) = w.json(&eml, &["--ip", IP]);
    assert_eq!(v["dmarc"]["result"], "none");
    run.assert_exit(41);
    assert!(v["next_steps"].as_array().unwrap().iter().any(|s| s
        .as_str()
        .unwrap()
        .contains("publish a DMARC record at _dmarc.ip4.test")));
}

#[test]
fn blocklist_listing_and_iprev_failure() {
    let w = world();
    let signed = sign_rsa(&message("reports@signed.test", "x\r\n"), "rsa");
    let eml = w.write("b.eml", &signed);
    let (v, run) = w.json(&eml, &["--ip", IP, "--dnsbl", "bl.test,other-bl.test"]);
    assert_eq!(v["dnsbl"][0]["listed"], true);
    assert_eq!(v["dnsbl"][0]["codes"][0], "127.0.0.2");
    assert_eq!(
        v["dnsbl"][0]["reason"],
        "listed for testing, see https://bl.test/"
    );
    assert_eq!(v["dnsbl"][1]["listed"], false);
    run.assert_exit(41);
    // 192.0.2.200 has no PTR.
    let (v, _) = w.json(&eml, &["--ip", "192.0.2.200", "--helo", "other.test"]);
    assert_eq!(v["iprev"]["result"], "permerror");
    assert_eq!(v["iprev"]["helo_resolves_to_ip"], true);
    assert!(v["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("PTR record")));
}

#[test]
fn ip_from_received_and_bad_input() {
    let w = world();
    let msg = format!(
        "Received: from mail.signed.test (mail.signed.test [192.0.2.10]) by mx.receiver.test\r\n\
         \twith ESMTPS id 1; Mon, 02 Jun 2025 10:00:01 +0000\r\n{}",
        message("reports@signed.test", "x\r\n")
    );
    let eml = w.write("rcv.eml", &msg);
    let (v, _) = w.json(&eml, &[]);
    assert_eq!(v["ip"], IP);
    assert_eq!(v["ip_source"], "received");
    // No Received field and no --ip: bad input.
    let eml = w.write("no.eml", &message("reports@signed.test", "x\r\n"));
    w.sender(&eml).run().assert_exit(3);
    w.sender(Path::new("/nonexistent/x.eml"))
        .args(["--ip", IP])
        .run()
        .assert_exit(3);
    w.sender(&eml)
        .args(["--ip", IP, "--dnsbl", "bad zone"])
        .run()
        .assert_exit(3);
}

#[test]
fn dns_that_never_answers_is_temporary() {
    let hole = TestDns::black_hole();
    let dir = TempDir::new("sender-hole");
    let eml = dir.write("m.eml", message("reports@signed.test", "x\r\n"));
    let run = Cmd::new()
        .args([
            "sender",
            "--ip",
            IP,
            "--format",
            "json",
            "--dns-timeout",
            "300ms",
        ])
        .arg("--eml")
        .arg(&eml)
        .arg("--resolver")
        .arg(hole.addr().to_string())
        .run();
    run.assert_exit(24);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["spf"]["result"], "temperror");
    assert!(v["verdict"].as_str().unwrap().starts_with("undecided"));
}

/// The text and JSON reports, as snapshots (`tests/it/golden/sender_*.snap`): a report server
/// that signs before a footer is added and sends from an IP its SPF record does not list.
#[test]
fn golden_sender_reports() {
    let w = world();
    let signed = sign_rsa(&message("reports@signed.test", "Totals.\r\n"), "rsa");
    let eml = w.write("report.eml", &format!("{signed}--\r\nfooter\r\n"));
    let args = [
        "--ip",
        "192.0.2.200",
        "--from",
        "bounce@signed.test",
        "--helo",
        "mail.signed.test",
        "--dnsbl",
        "bl.test",
        "--color",
        "never",
    ];
    for (name, format) in [("sender_text", "text"), ("sender_json", "json")] {
        let run = w.sender(&eml).args(args).args(["--format", format]).run();
        run.assert_exit(40);
        let text = format!(
            "$ smtpcheck sender --eml report.eml {} --format {format}\nexit: {}\n--- stdout\n{}--- end\n",
            args.join(" "),
            run.code.unwrap_or(-1),
            run.stdout
        );
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("golden");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_snapshot!(name, text));
    }
}

// ---------------------------------------------------------------------------------------------
// send --check-sender against the scripted server
// ---------------------------------------------------------------------------------------------

/// The loopback sender of the `send --check-sender` tests: `loop.test` lists 127.0.0.1 in SPF,
/// `client.loop.test` (the announced name) resolves to it and is its PTR name.
const LOOP_RECORDS: &str = "loop TXT \"v=spf1 ip4:127.0.0.1 -all\"\n\
                            client.loop TXT \"v=spf1 ip4:127.0.0.1 -all\"\n\
                            client.loop A 127.0.0.1\n";
const LOOP_REVERSE: &str = "$ORIGIN 0.0.127.in-addr.arpa.\n1 PTR client.loop.test.\n";

/// A sink whose EHLO reply echoes the client's address, as Exchange and Exim do.
fn echoing_sink() -> crate::common::Sink {
    let script = crate::common::Script {
        ehlo: crate::common::Action::lines(
            250,
            &["sink.test Hello [{client}]", "PIPELINING", "8BITMIME"],
        ),
        ..Default::default()
    };
    crate::common::sink(script)
}

fn send_checking(w: &World, sink: &crate::common::Sink, eml: &Path, from: &str) -> Cmd {
    Cmd::send(sink.addr(), eml)
        .helo("client.loop.test")
        .args([
            "--from",
            from,
            "--to",
            "someone@receiver.test",
            "--check-sender",
        ])
        .arg("--resolver")
        .arg(w.dns.addr().to_string())
        .args(["--dns-timeout", "2s"])
}

#[test]
fn send_check_sender_passes_for_the_ip_the_server_echoes() {
    let w = world_with(LOOP_RECORDS, &[LOOP_REVERSE]);
    let sink = echoing_sink();
    let signed = sign_rsa(&message("reports@signed.test", "Totals.\r\n"), "rsa");
    let eml = w.write("ok.eml", &signed);
    let run = send_checking(&w, &sink, &eml, "bounce@loop.test")
        .arg("--require-sender-pass")
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    let s = report
        .sender
        .as_ref()
        .unwrap_or_else(|| panic!("no sender\n{}", run.dump()));
    assert_eq!(
        (s.ip.as_str(), s.ip_source.as_str()),
        ("127.0.0.1", "greeting")
    );
    assert_eq!(s.helo.as_deref(), Some("client.loop.test"));
    assert_eq!(s.mail_from, "bounce@loop.test");
    assert_eq!(s.spf.result, "pass", "{}", run.dump());
    assert_eq!(s.helo_spf.as_ref().unwrap().result, "pass");
    assert_eq!(s.dkim[0].result, "pass");
    assert_eq!(s.dmarc.result, "pass");
    assert_eq!(s.iprev.result, "pass");
    assert_eq!(s.exit, 0);
    assert!(
        s.notes.iter().any(|n| n.contains("says it sees")),
        "{:?}",
        s.notes
    );
    assert!(!report
        .warnings
        .iter()
        .any(|w| w.starts_with("sender check")));
    // The text report: the compact block, the delivery verdict.
    let text = send_checking(&w, &sink, &eml, "bounce@loop.test").run();
    text.assert_exit(0);
    assert!(
        text.stdout
            .contains("Sender check (IP 127.0.0.1 from greeting"),
        "{}",
        text.dump()
    );
    assert!(text.stdout.contains("would accept"), "{}", text.dump());
    // JUnit carries it as properties.
    let junit = send_checking(&w, &sink, &eml, "bounce@loop.test")
        .args(["--format", "junit"])
        .run();
    junit.assert_exit(0);
    assert!(
        junit
            .stdout
            .contains("<property name=\"sender.ip_source\" value=\"greeting\"/>"),
        "{}",
        junit.dump()
    );
    // Without --check-sender the field is null.
    let plain = Cmd::send(sink.addr(), &eml)
        .helo("client.loop.test")
        .args(["--to", "someone@receiver.test"])
        .json()
        .run();
    plain.assert_exit(0);
    assert!(plain.report().sender.is_none());
    assert!(plain.json_value()["sender"].is_null());
}

#[test]
fn send_check_sender_failure_is_a_warning_unless_required() {
    let w = world_with(LOOP_RECORDS, &[LOOP_REVERSE]);
    let sink = echoing_sink();
    // Unsigned, and signed.test's SPF does not list 127.0.0.1; its DMARC says p=reject.
    let eml = w.write("u.eml", &message("reports@signed.test", "x\r\n"));
    let run = send_checking(&w, &sink, &eml, "bounce@signed.test")
        .json()
        .run();
    run.assert_exit(0);
    let report = run.report();
    assert_eq!(report.outcome, "delivered");
    let s = report.sender.as_ref().unwrap();
    assert_eq!(
        (s.spf.result.as_str(), s.dmarc.result.as_str()),
        ("fail", "fail")
    );
    assert_eq!(s.dmarc.disposition, "reject");
    assert_eq!(s.exit, 40);
    assert!(s.next_steps[0].contains("add `ip4:127.0.0.1` to the SPF record of signed.test"));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w
                .starts_with("sender check (exit 40): a receiver enforcing DMARC would reject")),
        "{:?}",
        report.warnings
    );
    // --require-sender-pass: the sender's code is the exit code; the outcome stays delivered.
    let required = send_checking(&w, &sink, &eml, "bounce@signed.test")
        .arg("--require-sender-pass")
        .json()
        .run();
    required.assert_exit(40);
    let report = required.report();
    assert_eq!(
        (report.outcome.as_str(), report.exit_code),
        ("delivered", 40)
    );
    // Its environment variable says the same, and implies --check-sender.
    let env = Cmd::send(sink.addr(), &eml)
        .helo("client.loop.test")
        .args([
            "--from",
            "bounce@signed.test",
            "--to",
            "someone@receiver.test",
        ])
        .arg("--resolver")
        .arg(w.dns.addr().to_string())
        .env("SMTPCHECK_REQUIRE_SENDER_PASS", "true")
        .run();
    env.assert_exit(40);
    assert!(
        env.stdout
            .contains("the sender check did not pass (its exit 40)"),
        "{}",
        env.dump()
    );
    // A delivery failure keeps its own code.
    let script = crate::common::Script {
        rcpt: crate::common::Action::reply("550 5.1.1 No such user"),
        ..Default::default()
    };
    let refusing = crate::common::sink(script);
    let refused = send_checking(&w, &refusing, &eml, "bounce@signed.test")
        .arg("--require-sender-pass")
        .json()
        .run();
    refused.assert_exit(13);
    assert_eq!(refused.report().sender.unwrap().exit, 40);
}

#[test]
fn send_check_sender_falls_back_to_the_local_address_with_a_nat_note() {
    let w = world_with(LOOP_RECORDS, &[LOOP_REVERSE]);
    // The default sink does not echo the address (like Postfix).
    let sink = crate::common::sink(crate::common::Script::default());
    let signed = sign_rsa(&message("reports@signed.test", "Totals.\r\n"), "rsa");
    let eml = w.write("ok.eml", &signed);
    let run = send_checking(&w, &sink, &eml, "bounce@loop.test")
        .json()
        .run();
    run.assert_exit(0);
    let s = run.report().sender.unwrap();
    assert_eq!(
        (s.ip.as_str(), s.ip_source.as_str()),
        ("127.0.0.1", "local")
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("a NAT on the way may change it")),
        "{:?}",
        s.notes
    );
    // --ip wins over both.
    let given = send_checking(&w, &sink, &eml, "bounce@loop.test")
        .args(["--ip", OTHER_IP])
        .json()
        .run();
    let s = given.report().sender.unwrap();
    assert_eq!((s.ip.as_str(), s.ip_source.as_str()), (OTHER_IP, "--ip"));
    assert_eq!(s.spf.result, "fail");
    // A bad --dnsbl is bad input before any connection.
    let bad = send_checking(&w, &sink, &eml, "bounce@loop.test")
        .args(["--dnsbl", "not a zone"])
        .run();
    bad.assert_exit(3);
    assert!(bad.stderr.contains("--dnsbl"), "{}", bad.dump());
}

#[test]
fn send_check_sender_flags_come_from_a_profile() {
    let w = world_with(LOOP_RECORDS, &[LOOP_REVERSE]);
    let sink = echoing_sink();
    let eml = w.write("u.eml", &message("reports@signed.test", "x\r\n"));
    let config = w.write(
        "config.toml",
        &format!(
            "[profile.judge]\nrequire_sender_pass = true\nip = \"{OTHER_IP}\"\ndnsbl = [\"bl.test\"]\nresolver = \"{}\"\n",
            w.dns.addr()
        ),
    );
    let run = Cmd::send(sink.addr(), &eml)
        .helo("client.loop.test")
        .args([
            "--from",
            "bounce@signed.test",
            "--to",
            "someone@receiver.test",
        ])
        .arg("--config")
        .arg(&config)
        .args(["--profile", "judge"])
        .json()
        .run();
    run.assert_exit(40);
    let s = run.report().sender.unwrap();
    assert_eq!((s.ip.as_str(), s.ip_source.as_str()), (OTHER_IP, "--ip"));
    assert_eq!(s.dnsbl.len(), 1);
    assert_eq!(s.dnsbl[0].zone, "bl.test");
    assert!(!s.dnsbl[0].listed);
}

#[test]
fn dkim_expired_signature_is_neutral_with_its_reason() {
    let w = world();
    let plain = message("reports@signed.test", "Totals.\r\n");
    // x= one second after t=: expired once two seconds have passed.
    let sig = DkimSigner::from_key(rsa_key())
        .domain("signed.test")
        .selector("rsa")
        .headers(SIGNED)
        .expiration(1)
        .sign(plain.as_bytes())
        .unwrap();
    let eml = w.write("expired.eml", &format!("{}{plain}", sig.to_header()));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (v, run) = w.json(&eml, &["--ip", IP, "--from", "bounce@signed.test"]);
    let k = &v["dkim"][0];
    assert_eq!(k["result"], "neutral", "{k}");
    assert_eq!(k["reason"], "signature expired (x= is past)", "{k}");
    // SPF still passes and aligns, so DMARC passes; the expired signature is a failing check.
    assert_eq!(v["dmarc"]["result"], "pass", "{v}");
    run.assert_exit(41);
    assert!(v["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("the signature expired (x=)")));
}

#[test]
fn a_profile_error_under_format_json_is_one_json_document() {
    let w = world();
    let eml = w.write("m.eml", &message("reports@signed.test", "x\r\n"));
    let config = w.write("config.toml", "[profile.other]\nip = \"192.0.2.10\"\n");
    let run = w
        .sender(&eml)
        .arg("--config")
        .arg(&config)
        .args(["--profile", "missing", "--format", "json"])
        .run();
    run.assert_exit(3);
    let v = run.json_value();
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["failure"]["stage"], "input");
    let reason = v["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("there is no profile \"missing\""),
        "{reason}"
    );
    assert!(run.stderr.contains("there is no profile"), "{}", run.dump());
    // In text, stdout stays empty and the error is on stderr.
    let text = w
        .sender(&eml)
        .arg("--config")
        .arg(&config)
        .args(["--profile", "missing"])
        .run();
    text.assert_exit(3);
    assert!(text.stdout.is_empty(), "{}", text.dump());
}

#[test]
fn spf_fail_carries_the_domains_exp_explanation() {
    let w = world_with(
        "expl TXT \"v=spf1 ip4:192.0.2.0/24 exp=why.expl.test -all\"\n\
         why.expl TXT \"%{i} is not one of %{d}'s designated mail servers\"\n\
         noexp TXT \"v=spf1 ip4:192.0.2.0/24 exp=missing.noexp.test -all\"\n",
        &[],
    );
    let eml = w.write("m.eml", &message("reports@expl.test", "x\r\n"));
    let (v, _) = w.json(&eml, &["--ip", OTHER_IP, "--from", "bounce@expl.test"]);
    assert_eq!(v["spf"]["result"], "fail", "{v}");
    assert_eq!(
        v["spf"]["explanation"], "198.51.100.1 is not one of expl.test's designated mail servers",
        "{}",
        v["spf"]
    );
    // A pass has no explanation; an exp= naming nothing leaves it null.
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "bounce@expl.test"]);
    assert_eq!(v["spf"]["result"], "pass");
    assert!(v["spf"]["explanation"].is_null());
    let (v, _) = w.json(&eml, &["--ip", OTHER_IP, "--from", "bounce@noexp.test"]);
    assert_eq!(v["spf"]["result"], "fail");
    assert!(v["spf"]["explanation"].is_null(), "{}", v["spf"]);
}

/// One forwarder's hop: verify DKIM and ARC against the test zone as a receiver would, then add
/// an Authentication-Results header and an ARC set (i = n+1) sealed by `domain` with selector
/// `arc` (the 2048-bit test key).
fn arc_seal_hop(w: &World, raw: &str, domain: &str) -> String {
    use mail_auth::arc::ArcSealer;
    use mail_auth::{
        AuthenticatedMessage, AuthenticationResults, DkimResult, MessageAuthenticator,
    };
    let resolver =
        smtpcheck::internals::Resolver::new(Some(w.dns.addr()), std::time::Duration::from_secs(2))
            .unwrap();
    let auth = MessageAuthenticator(resolver.hickory());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let message = AuthenticatedMessage::parse(raw.as_bytes()).unwrap();
    let (dkim, arc) = runtime.block_on(async {
        (
            auth.verify_dkim(&message).await,
            auth.verify_arc(&message).await,
        )
    });
    assert!(
        matches!(arc.result(), DkimResult::Pass | DkimResult::None),
        "the chain should verify before {domain} seals it: {:?}",
        arc.result()
    );
    let host = format!("mx.{domain}");
    let results = AuthenticationResults::new(&host).with_dkim_results(&dkim, "signed.test");
    let set = ArcSealer::from_key(rsa_key())
        .domain(domain)
        .selector("arc")
        .headers([
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "DKIM-Signature",
        ])
        .seal(&message, &results, &arc)
        .unwrap();
    format!("{}{}{raw}", set.to_header(), results.to_header())
}

#[test]
fn arc_chain_sealed_twice_passes_and_a_changed_body_fails() {
    let keys = format!(
        "arc._domainkey.fwd1 TXT {key}\narc._domainkey.fwd2 TXT {key}\n",
        key = txt(&format!("v=DKIM1; k=rsa; p={}", rsa_public()))
    );
    let w = world_with(&keys, &[]);
    let signed = sign_rsa(
        &message("reports@signed.test", "Totals attached.\r\n"),
        "rsa",
    );
    // The list server fwd1.test seals, then fwd2.test verifies that seal and adds its own.
    let sealed = arc_seal_hop(&w, &arc_seal_hop(&w, &signed, "fwd1.test"), "fwd2.test");
    assert!(
        sealed.contains("ARC-Seal: i=2;") && sealed.contains("cv=pass"),
        "{sealed}"
    );
    let tampered = sealed.replace("Totals attached.", "Totals attached!");
    assert_ne!(sealed, tampered);
    let args = ["--ip", IP, "--from", "bounce@signed.test"];

    let eml = w.write("arc.eml", &sealed);
    let (v, run) = w.json(&eml, &args);
    run.assert_exit(0);
    let arc = &v["arc"];
    assert_eq!(arc["result"], "pass", "{arc}");
    assert_eq!(arc["instances"], 2, "{arc}");
    assert!(arc["reason"].is_null(), "{arc}");
    assert_eq!(v["dkim"][0]["result"], "pass", "{}", v["dkim"]);
    let text = w.sender(&eml).args(args).run();
    assert!(
        text.stdout
            .contains("ARC              pass (2 instance(s))"),
        "{}",
        text.dump()
    );

    let eml = w.write("arc-tampered.eml", &tampered);
    let (v, run) = w.json(&eml, &args);
    let arc = &v["arc"];
    assert_eq!(arc["result"], "fail", "{arc}");
    assert_eq!(arc["instances"], 2, "{arc}");
    assert_eq!(
        arc["reason"], "body hash mismatch: the body was changed after the last ARC seal",
        "{arc}"
    );
    // DMARC still passes on aligned SPF; the broken chain is a failing check.
    assert_eq!(v["dmarc"]["result"], "pass", "{v}");
    run.assert_exit(41);
    let text = w.sender(&eml).args(args).run();
    assert!(
        text.stdout
            .contains("ARC              fail (2 instance(s))"),
        "{}",
        text.dump()
    );
}

/// `msg` signed by dkimpy (`dkim.sign`, rsa-sha256, relaxed/relaxed) for signed.test with
/// `selector` and the PKCS#1 key at `key`; None (with a note) when dkimpy is missing outside CI.
fn dkimpy_sign(msg: &str, selector: &str, key: &Path) -> Option<String> {
    const SIGN: &str = r#"
import sys
try:
    import dkim
except ImportError as e:
    print(f"missing Python module: {e.name}", file=sys.stderr)
    sys.exit(3)
message = sys.stdin.buffer.read()
with open(sys.argv[2], "rb") as f:
    key = f.read()
headers = [h.encode() for h in sys.argv[3].split(":")]
sig = dkim.sign(message, sys.argv[1].encode(), b"signed.test", key,
                canonicalize=(b"relaxed", b"relaxed"), include_headers=headers)
sys.stdout.buffer.write(sig + message)
"#;
    let child = Command::new("python3")
        .arg("-c")
        .arg(SIGN)
        .arg(selector)
        .arg(key)
        .arg(SIGNED.join(":"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(!under_ci(), "python3 is required under CI: {e}");
            eprintln!(
                "note: python3 cannot be run ({e}); skipping the dkimpy-signed RSA-1024 case"
            );
            return None;
        }
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(msg.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        assert!(
            !under_ci(),
            "dkimpy is required under CI (scripts/test.sh installs it): {stderr}"
        );
        eprintln!(
            "note: {} — skipping the dkimpy-signed RSA-1024 case (scripts/test.sh installs dkimpy)",
            stderr.trim()
        );
        return None;
    }
    assert!(out.status.success(), "dkim.sign failed: {stderr}");
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn rsa_1024_signature_made_by_dkimpy_verifies() {
    // ring signs only with keys of 2048 bits or more, so dkimpy signs with the 1024-bit key.
    let public = std::fs::read_to_string(root().join("tests/fixtures/dkim/rsa1024.pub")).unwrap();
    let w = world_with(
        &format!(
            "rsa1024._domainkey.signed TXT {}\n",
            txt(&format!("v=DKIM1; k=rsa; p={}", public.trim()))
        ),
        &[],
    );
    let plain = message("reports@signed.test", "Totals attached.\r\n");
    let key = root().join("tests/fixtures/dkim/rsa1024.pem");
    let Some(signed) = dkimpy_sign(&plain, "rsa1024", &key) else {
        return;
    };
    let eml = w.write("rsa1024.eml", &signed);
    let (v, run) = w.json(&eml, &["--ip", IP, "--from", "bounce@signed.test"]);
    let k = &v["dkim"][0];
    assert_eq!(k["result"], "pass", "{k}");
    assert_eq!(k["algorithm"], "rsa-sha256", "{k}");
    assert_eq!(k["selector"], "rsa1024", "{k}");
    assert_eq!(k["domain"], "signed.test", "{k}");
    assert!(k["reason"].is_null(), "{k}");
    assert_eq!(v["dmarc"]["dkim_aligned"], true, "{v}");
    run.assert_exit(0);
    // A changed body still fails with the 1024-bit key.
    let eml = w.write(
        "rsa1024-body.eml",
        &signed.replace("Totals attached.", "Totals attached!"),
    );
    let (v, _) = w.json(&eml, &["--ip", IP, "--from", "bounce@signed.test"]);
    assert!(
        v["dkim"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("body hash mismatch")),
        "{}",
        v["dkim"]
    );
}
