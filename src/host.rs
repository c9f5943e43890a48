//! This machine's names: what to announce in EHLO and to name in reports.
//!
//! A leaf apart from [`crate::address`] (which checks that a name is a valid domain).

/// This machine's fully qualified name, when it has one: the kernel host name if it contains a dot,
/// else a dotted alias of it in /etc/hosts.
pub fn local_fqdn() -> Option<String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let name = read("/proc/sys/kernel/hostname")
        .or_else(|| read("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|n| !n.is_empty())?;
    let valid = |n: &str| crate::address::check_domain(n).is_ok();
    if name.contains('.') && valid(&name) {
        return Some(name);
    }
    let hosts = read("/etc/hosts").unwrap_or_default();
    hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter(|l| l.split_whitespace().skip(1).any(|n| n == name))
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find(|n| n.contains('.') && n.starts_with(&format!("{name}.")) && valid(n))
}

/// This machine's name: its fully qualified name when it has one, else the kernel host name, else
/// `localhost`.
pub fn this_host() -> String {
    local_fqdn()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|n| crate::address::check_domain(n).is_ok())
        })
        .unwrap_or_else(|| "localhost".to_string())
}
