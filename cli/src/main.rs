//! The `syncpipe` binary: parse, build, run, map the result to an exit code.

mod batch_cli;
mod bench;
mod bench_cli;
mod cli;
mod dashboard;
mod exit_code;
mod exporter;
mod help;
mod json_lines;
mod key_source;
mod manual;
mod plot;
mod prometheus;
mod recipients;
mod shard;
mod signals;
mod size;
mod stdin_state;
mod synthetic;
mod telemetry;
mod textfile;
mod walk;

fn main() {
    let args = cli::parse();
    let code = cli::run(args);
    std::process::exit(code as i32);
}
