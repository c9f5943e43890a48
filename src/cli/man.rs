//! The man page, generated from the CLI definition.

use super::Cli;
use crate::exit::Exit;

/// The man page (roff): the main page, a section per subcommand with its synopsis and options
/// (each with its SMTPCHECK_* variable), then EXIT STATUS, ENVIRONMENT and FILES.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub
            .get_bin_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("smtpcheck {}", sub.get_name()));
        let sub_man = clap_mangen::Man::new(sub.clone());
        let mut buf = Vec::new();
        sub_man.render_synopsis_section(&mut buf)?;
        sub_man.render_description_section(&mut buf)?;
        sub_man.render_options_section(&mut buf)?;
        let text = String::from_utf8_lossy(&buf)
            .replace(".SH SYNOPSIS", &format!(".SH \"{}\"", name.to_uppercase()))
            .replace(".SH DESCRIPTION\n", "")
            .replace(".SH OPTIONS", &format!(".SS \"Options of {name}\""));
        // The global options are on the page once, above.
        let text = match text.find(".SH \"GLOBAL OPTIONS\"") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        out.extend_from_slice(text.as_bytes());
    }
    let roff = |s: &str| {
        let s = s.replace('\\', "\\e");
        if s.starts_with(['.', '\'']) {
            format!("\\&{s}")
        } else {
            s
        }
    };
    let mut extra = String::from(".SH \"EXIT STATUS\"\n.PP\n\\fBsmtpcheck send\\fR exits with:\n");
    for e in Exit::ALL {
        extra.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            e.code(),
            roff(e.meaning())
        ));
    }
    extra.push_str(".PP\n\\fBsmtpcheck mx\\fR exits with:\n");
    for (e, meaning) in Exit::MX {
        extra.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", e.code(), roff(meaning)));
    }
    extra.push_str(".SH ENVIRONMENT\n");
    for (name, what) in [
        ("SMTPCHECK_<OPTION>", "Every option, e.g. SMTPCHECK_SMART_HOST for --smart-host (shown with each option above). A flag on the command line wins over a profile, and a profile wins over these variables."),
        ("SMTPCHECK_PASSWORD", "The AUTH password for --auth-user (there is no flag for it)."),
        ("SMTPCHECK_IMAP_PASSWORD", "The IMAP password for --confirm (there is no flag for it)."),
        ("NO_COLOR", "When set and not empty, no colour with --color auto."),
        ("XDG_CONFIG_HOME", "Where the config file is looked for (default ~/.config)."),
    ] {
        extra.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(name), roff(what)));
    }
    extra.push_str(".SH FILES\n.TP\n\\fB$XDG_CONFIG_HOME/smtpcheck/config.toml\\fR, \\fB~/.config/smtpcheck/config.toml\\fR\n");
    extra.push_str(&roff("The config file with named profiles ([profile.NAME] tables whose keys are the long option names), read when --profile NAME is given; --config FILE names another file."));
    extra.push('\n');
    out.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}
