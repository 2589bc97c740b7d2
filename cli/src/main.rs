//! The `syncpipe` binary: parse, build, run, map the result to an exit code.

mod batch_cli;
mod bench_cli;
mod cli;
mod dashboard;
mod exit_code;
mod exporter;
mod json_lines;
mod key_source;
mod manual;
mod prometheus;
mod signals;
mod stdin_state;
mod telemetry;
mod textfile;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    let code = cli::run(args);
    std::process::exit(code as i32);
}
