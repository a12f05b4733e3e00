//! The tracing subscriber: JSON or pretty logs, filtered by `POLYPORT_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once, logging to stdout; later calls (tests) are ignored.
pub fn init(format: LogFormat, filter: &str) {
    install(format, filter, Output::Stdout);
}

/// As `init`, but logs go to stderr: operator commands keep stdout for their one result line.
pub fn init_stderr(format: LogFormat, filter: &str) {
    install(format, filter, Output::Stderr);
}

#[derive(Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

fn install(format: LogFormat, filter: &str, output: Output) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal (and never with NO_COLOR set).
    let terminal = match output {
        Output::Stdout => std::io::stdout().is_terminal(),
        Output::Stderr => std::io::stderr().is_terminal(),
    };
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    let _ = match (format, output) {
        (LogFormat::Json, Output::Stdout) => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(true).try_init()
        }
        (LogFormat::Json, Output::Stderr) => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
        (LogFormat::Pretty, Output::Stdout) => builder.compact().try_init(),
        (LogFormat::Pretty, Output::Stderr) => builder.with_writer(std::io::stderr).compact().try_init(),
    };
}
