use std::process::ExitCode;

fn main() -> ExitCode {
    smtpcheck::main_with(std::env::args_os().collect())
}
