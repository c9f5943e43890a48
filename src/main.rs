use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = smtpcheck::cli::Cli::parse();
    smtpcheck::run(cli).into()
}
