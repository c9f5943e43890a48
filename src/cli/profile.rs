//! Profiles: named sets of options in a TOML config file, layered under the command line.
//!
//! ```toml
//! # ~/.config/smtpcheck/config.toml
//! [profile.corp-relay]
//! smart_host = "relay.corp.example:587"
//! tls = "required"
//! ca = "/etc/ssl/corp-ca.pem"
//! auth_user = "reports"
//! auth_password_file = "/run/secrets/smtp"
//! helo = "reports.corp.example"
//! timeout = "30s"
//! to = ["postmaster@corp.example"]
//! ```
//!
//! A profile's keys are the long option names, with `_` or `-` (`smart_host`, `smart-host`);
//! values are strings, numbers, booleans (for switches such as `insecure`), or arrays for
//! repeatable options (`to`, `header`). Every key is checked by the same parser as the option, and
//! the file is read only when a profile is chosen (`--profile NAME` or `SMTPCHECK_PROFILE`).
//!
//! Precedence, highest first: a flag on the command line; the profile; an `SMTPCHECK_*`
//! environment variable; the built-in default. It is done in two passes: clap parses the command
//! line with the environment; then every profile key whose option did not come from the command
//! line (`ArgMatches::value_source`), and does not conflict with one that did, is appended to the
//! command line, with that option's environment variable switched off, and clap parses again.
//! Anything wrong with the file or the profile is bad input (exit 3), naming the file and the fix.
//! Passwords have no place here: use `auth_password_file` or `SMTPCHECK_PASSWORD`.

use crate::cli::Cli;
use crate::error::Error;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Why the command line could not be turned into a [`Cli`].
#[derive(Debug)]
pub enum Failed {
    /// clap's own error: usage (exit 2), or `--help` / `--version` (exit 0).
    Clap(clap::Error),
    /// The config file or profile is unusable (exit 3). `cli` is the command line without the
    /// profile, so that the error is reported in the format asked for.
    Config {
        /// The command line as parsed without the profile.
        cli: Box<Cli>,
        /// What is wrong.
        error: Error,
    },
}

/// The default config file: `$XDG_CONFIG_HOME/smtpcheck/config.toml` when that variable is an
/// absolute path, else `$HOME/.config/smtpcheck/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".config"))
    })?;
    Some(base.join("smtpcheck").join("config.toml"))
}

/// Parses the command line (`argv[0]` first) with the environment and, when a profile is
/// chosen, the profile.
pub fn parse_cli(argv: Vec<OsString>) -> Result<Cli, Failed> {
    // Parsed without keeping a clone of the command: cloning and dropping every Arg was a fifth of
    // the CPU time of `smtpcheck --version`. The profile path below builds the command again.
    let matches = without_empty_env(Cli::command())
        .try_get_matches_from(&argv)
        .map_err(Failed::Clap)?;
    let cli = Cli::from_arg_matches(&matches).map_err(Failed::Clap)?;
    let Some(profile) = cli.profile.clone() else {
        return Ok(cli);
    };
    let Some((sub, sub_matches)) = matches.subcommand() else {
        return Ok(cli);
    };
    if !matches!(sub, "send" | "mx" | "sender") {
        return Ok(cli);
    }
    let path = match cli.config.clone().or_else(default_path) {
        Some(p) => p,
        None => {
            return Err(Failed::Config {
                cli: Box::new(cli),
                error: Error::Config {
                    path: PathBuf::from("(none)"),
                    why: "no config file: HOME and XDG_CONFIG_HOME are not set; give the file with --config FILE".into(),
                },
            })
        }
    };
    let cmd = without_empty_env(Cli::command());
    let layered = load_profile(&path, &profile).and_then(|table| {
        layer(
            &cmd,
            &matches,
            sub,
            sub_matches,
            &argv,
            &table,
            &path,
            &profile,
        )
    });
    match layered {
        Ok(cli) => Ok(cli),
        Err(error) => Err(Failed::Config {
            cli: Box::new(cli),
            error,
        }),
    }
}

/// `true` when a command line that clap refused asked for the JSON report, so that its usage
/// error is one JSON document too: `--format json` (or `--format=json`) on the command line, else
/// `format = "json"` in the chosen profile, else `SMTPCHECK_FORMAT=json`; only for `send` and `mx`.
pub fn wants_json(argv: &[OsString]) -> bool {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if !args
        .iter()
        .any(|a| a == "send" || a == "mx" || a == "sender")
    {
        return false;
    }
    let value_of = |name: &str| -> Option<String> {
        let long = format!("--{name}");
        let eq = format!("--{name}=");
        let mut found = None;
        for (i, a) in args.iter().enumerate() {
            if *a == "--" {
                break;
            }
            if *a == long {
                found = args.get(i + 1).cloned();
            } else if let Some(v) = a.strip_prefix(&eq) {
                found = Some(v.to_string());
            }
        }
        found
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(f) = value_of("format") {
        return f == "json";
    }
    let profile = value_of("profile").or_else(|| env("SMTPCHECK_PROFILE"));
    let path = value_of("config")
        .or_else(|| env("SMTPCHECK_CONFIG"))
        .map(PathBuf::from)
        .or_else(default_path);
    if let (Some(name), Some(path)) = (profile, path) {
        if let Ok(table) = load_profile(&path, &name) {
            if let Some(f) = table.get("format").and_then(|v| v.as_str()) {
                return f == "json";
            }
        }
    }
    env("SMTPCHECK_FORMAT").is_some_and(|f| f == "json")
}

/// An `SMTPCHECK_*` variable set to the empty string counts as unset (CI systems pass an undefined
/// variable as empty): the options whose variable is empty do not read it.
fn without_empty_env(cmd: clap::Command) -> clap::Command {
    fn fix(a: clap::Arg) -> clap::Arg {
        let empty = a
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.is_empty());
        if empty {
            a.env(None)
        } else {
            a
        }
    }
    cmd.mut_args(fix).mut_subcommands(|sub| sub.mut_args(fix))
}

/// The largest config file read.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// Reads the config file and returns the table of `[profile.NAME]`.
pub fn load_profile(path: &Path, name: &str) -> Result<toml::Table, Error> {
    let err = |why: String| Error::Config {
        path: path.to_path_buf(),
        why,
    };
    let bytes = crate::files::read_bounded(path, MAX_CONFIG_FILE).map_err(|e| {
        err(format!(
            "cannot read it ({e}); create it with a [profile.{name}] table, or give the right file with --config FILE"
        ))
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| err("it is not UTF-8 text; a config file is TOML".into()))?;
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // One line (the verdict line quotes it): the message and where, without the snippet.
        let at = e
            .span()
            .map(|span| {
                let before = text.get(..span.start).unwrap_or(&text);
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        err(format!(
            "it is not valid TOML: {}{at}; fix the syntax (see README, Profiles)",
            e.message().trim_end().replace('\n', " ")
        ))
    })?;
    let profiles = match doc.get("profile") {
        Some(toml::Value::Table(t)) => Some(t),
        Some(_) => {
            return Err(err(
                "`profile` must be a table of profiles: write [profile.NAME] sections".into(),
            ))
        }
        None => None,
    };
    let names: Vec<&str> = profiles
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    match profiles.and_then(|p| p.get(name)) {
        Some(toml::Value::Table(t)) => Ok(t.clone()),
        Some(_) => Err(err(format!(
            "profile.{name} must be a table: write it as a [profile.{name}] section"
        ))),
        None if names.is_empty() => Err(err(format!(
            "it defines no profiles, so there is no profile {name:?}; add a [profile.{name}] section"
        ))),
        None => Err(err(format!(
            "there is no profile {name:?} (it defines: {}); add a [profile.{name}] section or choose one of those with --profile",
            names.join(", ")
        ))),
    }
}

/// The second pass: the command line with the profile's options appended.
#[allow(clippy::too_many_arguments)]
fn layer(
    cmd: &clap::Command,
    matches: &ArgMatches,
    sub: &str,
    sub_matches: &ArgMatches,
    argv: &[OsString],
    profile: &toml::Table,
    path: &Path,
    name: &str,
) -> Result<Cli, Error> {
    let err = |why: String| Error::Config {
        path: path.to_path_buf(),
        why: format!("profile {name:?}: {why}"),
    };
    let sub_cmd = cmd
        .find_subcommand(sub)
        .ok_or_else(|| err(format!("internal: no subcommand {sub}")))?;
    let settable = |a: &&clap::Arg| {
        a.get_long().is_some()
            && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)
            && !matches!(a.get_id().as_str(), "config" | "profile")
    };
    let known: Vec<String> = ["send", "mx", "sender"]
        .iter()
        .filter_map(|s| cmd.find_subcommand(s))
        .flat_map(|c| {
            c.get_arguments()
                .filter(settable)
                .cloned()
                .collect::<Vec<_>>()
        })
        .chain(cmd.get_arguments().filter(settable).cloned())
        .map(|a| a.get_id().to_string())
        .fold(Vec::new(), |mut v, id| {
            if !v.contains(&id) {
                v.push(id);
            }
            v
        });
    let from_command_line = |id: &str| {
        let m = if cmd.get_arguments().any(|a| a.get_id() == id) {
            matches
        } else {
            sub_matches
        };
        matches!(m.try_get_raw(id), Ok(Some(_)))
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    let mut extra: Vec<OsString> = Vec::new();
    let mut overridden: Vec<String> = Vec::new();
    for (key, value) in profile {
        let id = key.replace('-', "_");
        if matches!(
            id.as_str(),
            "password" | "auth_password" | "imap_password" | "confirm_password"
        ) {
            return Err(err(format!(
                "{key}: passwords are never read from the config file; use auth_password_file = \"FILE\" or the SMTPCHECK_PASSWORD environment variable"
            )));
        }
        if matches!(
            id.as_str(),
            "oauth2_token" | "oauth2_client_secret" | "oauth2_refresh_token"
        ) {
            return Err(err(format!(
                "{key}: OAuth secrets are never read from the config file; use {key}_file = \"FILE\" or the SMTPCHECK_{} environment variable",
                id.to_ascii_uppercase()
            )));
        }
        if !known.contains(&id) {
            let mut keys = known.clone();
            keys.sort();
            return Err(err(format!(
                "unknown key {key:?}; the keys are the long option names: {}",
                keys.join(", ")
            )));
        }
        let arg = sub_cmd
            .get_arguments()
            .chain(cmd.get_arguments())
            .find(|a| a.get_id() == id.as_str());
        let Some(arg) = arg else {
            // An option of the other subcommand (e.g. `probe` while sending): not for this run.
            continue;
        };
        if from_command_line(&id) {
            continue;
        }
        // A flag on the command line that conflicts with this key wins over it too (e.g. -6
        // over `ipv4 = true`, --eml over `subject`).
        let conflicts = sub_cmd.get_arguments().any(|other| {
            other.get_id() != arg.get_id()
                && from_command_line(other.get_id().as_str())
                && (sub_cmd
                    .get_arg_conflicts_with(other)
                    .iter()
                    .any(|c| c.get_id() == arg.get_id())
                    || sub_cmd
                        .get_arg_conflicts_with(arg)
                        .iter()
                        .any(|c| c.get_id() == other.get_id()))
        });
        if conflicts {
            continue;
        }
        let long = format!("--{}", arg.get_long().unwrap_or(id.as_str()));
        let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
            return Err(err(format!(
                "{key} takes one value, not a list; write {key} = \"…\""
            )));
        }
        for v in values {
            let text = match v {
                toml::Value::Boolean(b) if is_switch => {
                    if *b {
                        extra.push(long.clone().into());
                    }
                    continue;
                }
                _ if is_switch => {
                    return Err(err(format!(
                        "{key} is a switch: write {key} = true or {key} = false"
                    )))
                }
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    return Err(err(format!(
                        "{key}: nested lists and tables are not allowed; give a string, a number or a list of strings"
                    )))
                }
            };
            // `--name=value` keeps a value starting with '-' a value.
            let mut flag = OsString::from(format!("{long}="));
            flag.push(text);
            extra.push(flag);
        }
        overridden.push(id);
    }
    // The profile wins over the environment: switch off the variables of the options it sets.
    let mut cmd2 = cmd.clone();
    for id in &overridden {
        if cmd.get_arguments().any(|a| a.get_id() == id.as_str()) {
            cmd2 = cmd2.mut_arg(id, |a| a.env(None));
        } else {
            cmd2 = cmd2.mut_subcommand(sub, |s| s.mut_arg(id, |a| a.env(None)));
        }
    }
    // The profile's options go before a `--`, if there is one.
    let mut argv2: Vec<OsString> = argv.to_vec();
    let at = argv2.iter().position(|a| a == "--").unwrap_or(argv2.len());
    argv2.splice(at..at, extra);
    let m2 = cmd2.try_get_matches_from(&argv2).map_err(|e| {
        let text = e.to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string();
        err(format!("{first}; fix the value in the file"))
    })?;
    Cli::from_arg_matches(&m2).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Command, Format, TlsMode};

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("smtpcheck")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("smtpcheck-config-{}-{name}", std::process::id()))
    }

    const CONFIG: &str = r#"
[profile.corp]
smart-host = "relay.corp.example:587"
tls = "required"
timeout = 30
to = ["a@corp.example", "b@corp.example"]
insecure = true
format = "json"
probe = true

[profile.other]
helo = "x.example"
"#;

    #[test]
    fn profile_fills_what_the_command_line_left() {
        let dir = tmp("fill");
        let cfg = write(&dir, CONFIG);
        let cfg = cfg.to_str().unwrap();
        let cli = parse_cli(argv(&[
            "send",
            "--config",
            cfg,
            "--profile",
            "corp",
            "--tls",
            "off",
        ]))
        .unwrap();
        let Command::Send(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.smart_host.unwrap().port, Some(587));
        assert_eq!(a.conn.tls, TlsMode::Off, "the command line wins");
        assert_eq!(a.conn.timeout.as_secs(), 30);
        assert_eq!(a.to, vec!["a@corp.example", "b@corp.example"]);
        assert!(a.conn.insecure);
        assert_eq!(a.out.format, Format::Json);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn conflicting_command_line_flag_wins() {
        let dir = tmp("conflict");
        let cfg = write(
            &dir,
            "[profile.p]\nsmart_host = \"relay.example\"\nsubject = \"hi\"\n",
        );
        let cfg = cfg.to_str().unwrap();
        let cli = parse_cli(argv(&[
            "send",
            "--config",
            cfg,
            "--profile",
            "p",
            "--fallback-smart-host",
            "fb.example",
            "--eml",
            "m.eml",
        ]))
        .unwrap();
        let Command::Send(a) = cli.command else {
            panic!()
        };
        assert!(a.smart_host.is_none());
        assert!(a.subject.is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn config_error(text: &str, args: &[&str]) -> String {
        let dir = tmp(&format!("err{}", text.len()));
        let cfg = write(&dir, text);
        let mut all = vec!["send", "--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        let e = match parse_cli(argv(&all)) {
            Err(Failed::Config { error, .. }) => error,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(e.exit(), crate::exit::Exit::BadInput);
        let _ = std::fs::remove_dir_all(dir);
        e.to_string()
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let e = config_error(CONFIG, &["--profile", "nope"]);
        assert!(
            e.contains("config.toml") && e.contains("corp, other"),
            "{e}"
        );
        let e = config_error("[profile.p\n", &["--profile", "p"]);
        assert!(e.contains("not valid TOML"), "{e}");
        let e = config_error("[profile.p]\nsmarthost = \"x\"\n", &["--profile", "p"]);
        assert!(
            e.contains("unknown key \"smarthost\"") && e.contains("smart_host"),
            "{e}"
        );
        let e = config_error("[profile.p]\noauth2_token = \"x\"\n", &["--profile", "p"]);
        assert!(
            e.contains("oauth2_token_file") && !e.contains("\"x\""),
            "{e}"
        );
        let e = config_error("[profile.p]\npassword = \"x\"\n", &["--profile", "p"]);
        assert!(e.contains("SMTPCHECK_PASSWORD"), "{e}");
        let e = config_error("[profile.p]\nport = 0\n", &["--profile", "p"]);
        assert!(e.contains("--port") && e.contains("fix the value"), "{e}");
        let e = config_error("[profile.p]\ninsecure = \"yes\"\n", &["--profile", "p"]);
        assert!(e.contains("switch"), "{e}");
        let e = config_error("[profile.p]\nhelo = [\"a\", \"b\"]\n", &["--profile", "p"]);
        assert!(e.contains("one value"), "{e}");
        let e = config_error("x = 1\n", &["--profile", "p"]);
        assert!(e.contains("defines no profiles"), "{e}");
    }

    #[test]
    fn no_profile_no_file_read() {
        let cli = parse_cli(argv(&[
            "send",
            "--config",
            "/nonexistent/x.toml",
            "--to",
            "a@b.example",
        ]))
        .unwrap();
        assert!(cli.profile.is_none());
    }
}
