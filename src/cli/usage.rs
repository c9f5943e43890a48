//! Usage errors that clap words unhelpfully, said again with the fix: a `send` flag given without
//! the `send` subcommand, and several recipients after one `--to` separated by spaces.

use super::Cli;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::CommandFactory;
use std::ffi::OsString;

/// The subcommand names (and clap's `help`).
const SUBCOMMANDS: [&str; 5] = ["send", "mx", "completions", "man", "help"];

/// The error text to show instead of clap's, when there is a better one; `None` keeps clap's.
pub fn advice(argv: &[OsString], e: &clap::Error) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => return None,
    };
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    missing_subcommand(&args, &invalid).or_else(|| spaced_recipients(&args, &invalid))
}

/// `smtpcheck --eml x --to y`: a flag of `send` (or `mx`) before any subcommand.
fn missing_subcommand(args: &[String], invalid: &str) -> Option<String> {
    if args.iter().any(|a| SUBCOMMANDS.contains(&a.as_str())) {
        return None;
    }
    let long = invalid.strip_prefix("--")?;
    let long = long.split('=').next().unwrap_or(long);
    let cli = Cli::command();
    let owner = ["send", "mx"].into_iter().find(|name| {
        cli.find_subcommand(name)
            .is_some_and(|c| c.get_arguments().any(|a| a.get_long() == Some(long)))
    })?;
    let rest: Vec<String> = args.iter().map(|a| quote(a)).collect();
    Some(format!(
        "error: unexpected argument '{invalid}' found: it is a flag of the {owner} command, which \
         was not given\n\n  tip: put the command first: smtpcheck {owner} {}\n\nUsage: smtpcheck \
         {owner} [OPTIONS]\n\nFor more information, try 'smtpcheck {owner} --help'.\n",
        rest.join(" ")
    ))
}

/// `--to a@x b@y`: the second address is a stray argument.
fn spaced_recipients(args: &[String], invalid: &str) -> Option<String> {
    if invalid.starts_with('-') || !invalid.contains('@') {
        return None;
    }
    let at = args.iter().position(|a| a == invalid)?;
    let mut addresses = vec![invalid.to_string()];
    let mut after_to = false;
    for a in args[..at].iter().rev() {
        if a == "--to" {
            after_to = true;
            break;
        }
        if let Some(v) = a.strip_prefix("--to=") {
            addresses.insert(0, v.to_string());
            after_to = true;
            break;
        }
        if a.starts_with('-') || !a.contains('@') {
            return None;
        }
        addresses.insert(0, a.clone());
    }
    if !after_to {
        return None;
    }
    let more = args[at + 1..]
        .iter()
        .take_while(|a| !a.starts_with('-') && a.contains('@'));
    addresses.extend(more.cloned());
    let repeated: Vec<String> = addresses
        .iter()
        .map(|a| format!("--to {}", quote(a)))
        .collect();
    Some(format!(
        "error: unexpected argument '{invalid}' found: --to takes one value\n\n  tip: give several \
         recipients separated by commas (--to {}) or repeat the flag ({})\n\nUsage: smtpcheck send \
         [OPTIONS]\n\nFor more information, try 'smtpcheck send --help'.\n",
        quote(&addresses.join(",")),
        repeated.join(" ")
    ))
}

/// A word as a shell would need it: quoted when it holds anything but plain characters.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-[]".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: &[&str]) -> Option<String> {
        let argv: Vec<OsString> = std::iter::once("smtpcheck")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let e = Cli::try_parse_from_argv(&argv)?;
        advice(&argv, &e)
    }

    impl Cli {
        fn try_parse_from_argv(argv: &[OsString]) -> Option<clap::Error> {
            use clap::Parser;
            Cli::try_parse_from(argv).err()
        }
    }

    #[test]
    fn a_send_flag_without_send() {
        let t = text(&["--eml", "x.eml", "--to", "a@b.test"]).unwrap();
        assert!(
            t.contains("tip: put the command first: smtpcheck send --eml x.eml --to a@b.test"),
            "{t}"
        );
        let t = text(&["--probe", "example.com"]).unwrap();
        assert!(t.contains("smtpcheck mx --probe example.com"), "{t}");
        assert_eq!(text(&["--nonsense"]), None);
    }

    #[test]
    fn recipients_separated_by_spaces() {
        let t = text(&["send", "--to", "a@x.test", "b@y.test"]).unwrap();
        assert!(t.contains("--to a@x.test,b@y.test"), "{t}");
        assert!(t.contains("--to a@x.test --to b@y.test"), "{t}");
        let t = text(&["send", "--to=a@x.test", "b@y.test", "c@z.test"]).unwrap();
        assert!(t.contains("--to a@x.test,b@y.test,c@z.test"), "{t}");
        assert_eq!(text(&["send", "stray"]), None);
    }
}
