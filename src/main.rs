//! The `esm-sim` binary: logging set-up, then the CLI. Everything else is in the library.
//!
//! Every log line, at any level, and the final error go through `log_redaction`: AWS
//! credentials (the SDK logs the access key id at TRACE) are never printed. Log lines are
//! stamped by `log_time`: the virtual time while `simulate` runs, the wall clock otherwise.

use clap::Parser;
use esm_sim::log_redaction::{RedactingMakeWriter, Redactor};
use esm_sim::log_time::LogTime;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_env("ESM_SIM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let redactor = Redactor::from_env();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor.clone()))
        .with_ansi(ansi)
        .with_timer(LogTime)
        .init();
    match esm_sim::cli::main_with(esm_sim::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", redactor.redact_str(&format!("{error:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
