//! The many-files mode of the CLI: several inputs, `-r`, `--files-from`,
//! `--output-dir`, `--shard`, `--scheduler`, `--skip-existing`,
//! `--batch-small`. Turns flags into the library's batch jobs
//! (`walk`, `Pipeline::process_batch`), prints one line per
//! failed file and maps the per-file outcomes to one exit code.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::shard::Shard;
use crate::walk::{self, Source, WalkOptions};
use clap::Args as ClapArgs;
use syncpipe::batch::Policy;
use syncpipe::batch::{BatchJob, BatchOptions, BatchReport, Outcome};
use syncpipe::{Error, ErrorKind, Optimize, Pipeline, PipelineBuilder};

use crate::cli::{
    has_known_extension, output_extension, restored_name, shows_summary, verified_line,
    with_extension, OutputArgs, Removal, Verbosity, KNOWN_SUFFIXES,
};
use crate::exit_code::ExitCode;
use crate::key_source::{KeyArgs, Peeked};
use crate::telemetry::Telemetry;

/// How the inputs of process, restore and verify are found, split and
/// scheduled.
#[derive(ClapArgs, Debug, Default)]
pub struct InputArgs {
    /// Walk directories given as inputs, skipping the `*.spipe`, `*.zst`, `*.gz`, `*.tgz` and `*.tzst` found there
    /// (outputs are named by the path below the directory); without it a
    /// directory is a failed input.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Read input paths from FILE (`-` = stdin), one per line. Listed paths
    /// name their outputs, so they must be relative and free of `..`.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    files_from: Option<PathBuf>,
    /// With --files-from: paths are separated by NUL (`find -print0`).
    #[arg(long, requires = "files_from")]
    null: bool,
    /// Take only the files of shard I of N: FNV-1a 64 of the relative path,
    /// mod N, equals I (see docs/scaling-out.md).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Which file starts next: `fair` (3 small : 1 large, small <= 10 MiB;
    /// large files in at most a quarter of the slots) or `simple` (FIFO).
    /// [default: fair]
    #[arg(long, value_name = "POLICY")]
    scheduler: Option<Policy>,
    /// Files worked on at once (a streamed file holds its own chunk
    /// buffers and threads); 0 = the larger of twice the CPU tokens and the
    /// IO tokens; at most 1024. [default: 0]
    #[arg(long, value_name = "N", value_parser = crate::cli::count(syncpipe::limits::MAX_FILES_IN_FLIGHT))]
    files_in_flight: Option<usize>,
}

/// Where the outputs of a batch go.
#[derive(ClapArgs, Debug, Default)]
pub struct OutDirArgs {
    /// Write outputs under DIR, mirroring the inputs' relative paths
    /// (created as needed). [default: beside each input]
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    output_dir: Option<PathBuf>,
    /// Skip inputs whose output exists (outputs appear only when complete,
    /// so a rerun after an interruption finishes the batch).
    #[arg(long)]
    skip_existing: bool,
}

/// The small-file batching switch of process.
#[derive(ClapArgs, Debug, Default)]
pub struct SmallArgs {
    /// Encode up to 64 small files (< 256 KiB, at most 1 MiB together) per
    /// CPU job; still one container per file. (One container for a whole
    /// tree: `tar cf - DIR | syncpipe process - -o tree.tar.spipe`.)
    #[arg(long)]
    batch_small: bool,
}

impl SmallArgs {
    /// Refuses `--batch-small` for a format whose outputs are not
    /// containers: the small-file path encodes containers only, so it
    /// would silently do nothing.
    pub fn check(&self, format: syncpipe::Format) -> Result<(), Error> {
        if self.batch_small && format != syncpipe::Format::Spipe {
            return Err(Error::usage(format!(
                "--batch-small encodes syncpipe containers; with --format {format} \
                 each file is its own stream"
            )));
        }
        Ok(())
    }
}

impl InputArgs {
    /// The `--shard` given, if any.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// True when the command runs as a batch: not exactly one input, or any
/// batch flag given.
pub fn is_batch(
    inputs: &[PathBuf],
    i: &InputArgs,
    o: Option<&OutDirArgs>,
    s: Option<&SmallArgs>,
) -> bool {
    inputs.len() != 1
        || i.recursive
        || i.files_from.is_some()
        || i.shard.is_some()
        || i.scheduler.is_some()
        || i.files_in_flight.is_some()
        || o.is_some_and(|o| o.output_dir.is_some() || o.skip_existing)
        || s.is_some_and(|s| s.batch_small)
}

/// The one input of a single-file command.
pub fn single(inputs: Vec<PathBuf>) -> Result<PathBuf, Error> {
    inputs
        .into_iter()
        .next()
        .ok_or_else(|| Error::usage("no input given"))
}

/// `process` over many files.
pub fn process(
    pipeline: &Pipeline,
    inputs: &[PathBuf],
    out: &OutputArgs,
    i: &InputArgs,
    o: &OutDirArgs,
    s: &SmallArgs,
    (v, tel): (Verbosity, &Telemetry),
) -> Result<ExitCode, Error> {
    refuse_single_output(out)?;
    // A walked tree already holding containers: they are outputs, not
    // inputs (as `zstd -r` skips `.zst`). Named files are always taken.
    let (jobs, mut failures) = find(inputs, i, v, |p| !has_known_extension(p))?;
    let ext = output_extension(pipeline);
    let jobs = name_outputs(jobs, &mut failures, |e| {
        Ok(match &o.output_dir {
            Some(d) => with_extension(&d.join(&e.rel), &ext),
            None => with_extension(&e.path, &ext),
        })
    });
    begin(tel, pipeline, &jobs);
    let removals = out.rm.then(|| Removals::before(&jobs));
    let mut report =
        pipeline.process_batch(jobs, &options(pipeline, i, Some(o), Some(s), out.force));
    if let Some(r) = removals {
        r.remove(&mut report, Some(pipeline), v);
    }
    finish("processed", report, failures, v, tel)
}

/// `restore` over many containers: the secret is asked for once.
pub fn restore(
    builder: PipelineBuilder,
    keys: &KeyArgs,
    inputs: &[PathBuf],
    out: &OutputArgs,
    i: &InputArgs,
    o: &OutDirArgs,
    (v, tel): (Verbosity, &Telemetry),
) -> Result<ExitCode, Error> {
    refuse_single_output(out)?;
    let (jobs, mut failures) = find(inputs, i, v, has_known_extension)?;
    let pipeline = with_secret(builder, keys, &jobs, "restoring")?.build()?;
    crate::cli::preset_note(v, pipeline.config());
    let jobs = name_outputs(jobs, &mut failures, |e| {
        let stripped = |p: &Path| -> Result<PathBuf, Error> {
            restored_name(p).ok_or_else(|| {
                Error::usage(format!(
                    "cannot infer the output name (no .{KNOWN_SUFFIXES} suffix)"
                ))
                .with_path(&e.path)
            })
        };
        match &o.output_dir {
            Some(d) => Ok(d.join(stripped(&e.rel)?)),
            None => stripped(&e.path),
        }
    });
    begin(tel, &pipeline, &jobs);
    let removals = out.rm.then(|| Removals::before(&jobs));
    let mut report = pipeline.restore_batch(jobs, &options(&pipeline, i, Some(o), None, out.force));
    if let Some(r) = removals {
        // Restore checked every chunk and the digest before each commit.
        r.remove(&mut report, None, v);
    }
    finish("restored", report, failures, v, tel)
}

/// `verify` over many containers; prints `PATH: ok` per good one.
pub fn verify(
    builder: PipelineBuilder,
    keys: &KeyArgs,
    inputs: &[PathBuf],
    i: &InputArgs,
    v: Verbosity,
    tel: &Telemetry,
) -> Result<ExitCode, Error> {
    let (jobs, failures) = find(inputs, i, v, has_known_extension)?;
    let pipeline = with_secret(builder, keys, &jobs, "verifying")?.build()?;
    crate::cli::preset_note(v, pipeline.config());
    let jobs: Vec<BatchJob> = jobs
        .into_iter()
        .map(|e| BatchJob {
            input: e.path,
            output: None,
            size: e.size,
        })
        .collect();
    begin(tel, &pipeline, &jobs);
    let report = pipeline.verify_batch(jobs, &options(&pipeline, i, None, None, false));
    // With --json, stdout carries the JSON lines only. Written fallibly,
    // unlike `println!` (which panics on a closed stdout); the first error
    // ends the listing but not the verdict, so failed files still give
    // their exit code.
    let mut write_error = None;
    if !v.quiet && !tel.json() {
        for f in &report.files {
            if let Outcome::Done(r) = &f.outcome {
                let line = writeln!(io::stdout(), "{}", verified_line(&f.input, r));
                if let Err(e) = line {
                    write_error = Some(Error::io(e));
                    break;
                }
            }
        }
    }
    let code = finish("verified", report, failures, v, tel)?;
    match write_error {
        // Failed files keep their code; otherwise the listing's error
        // ends the run (a reader that went away: by SIGPIPE, in `run`).
        Some(e) if code == ExitCode::Success => Err(e),
        _ => Ok(code),
    }
}

/// `--rm` in a batch: every input as it was before the batch, removed
/// after the batch (when every folder holding an output has been fsynced)
/// for each file whose own output was committed and, for process, reads
/// back whole with the same key.
struct Removals(HashMap<PathBuf, Removal>);

impl Removals {
    fn before(jobs: &[BatchJob]) -> Removals {
        Removals(
            jobs.iter()
                .filter_map(|j| Some((j.input.clone(), Removal::of(&j.input).ok()?)))
                .collect(),
        )
    }

    /// Removes the inputs of the files done; a file whose output does not
    /// verify, or whose input changed, keeps its input and becomes a
    /// failure. A cancelled batch removes nothing.
    fn remove(mut self, report: &mut BatchReport, verify: Option<&Pipeline>, v: Verbosity) {
        let cancelled =
            |o: &Outcome| matches!(o, Outcome::Failed(e) if e.kind() == ErrorKind::Cancelled);
        if report.files.iter().any(|f| cancelled(&f.outcome)) {
            return;
        }
        for f in &mut report.files {
            let (Outcome::Done(r), Some(out)) = (&f.outcome, &f.output) else {
                continue;
            };
            let Some(removal) = self.0.remove(&f.input) else {
                continue;
            };
            // The output's own error names the output: said to be why the
            // input stays.
            let checked = match verify {
                Some(p) => p.verify_written(out, r).map(|_| ()).map_err(|e| {
                    let kind = e.kind();
                    Error::new(
                        kind,
                        format!("kept (--rm): its output does not verify: {e}"),
                    )
                    .with_path(&f.input)
                }),
                None => Ok(()),
            };
            match checked.and_then(|()| removal.remove(&f.input, v)) {
                Ok(()) => {}
                // Stopped meanwhile: the output stands, the input stays.
                Err(e) if e.kind() == ErrorKind::Cancelled => return,
                Err(e) => f.outcome = Outcome::Failed(e),
            }
        }
    }
}

fn refuse_single_output(out: &OutputArgs) -> Result<(), Error> {
    if out.output.is_some() || out.stdout {
        return Err(Error::usage(
            "-o and -c take a single input; for many files use --output-dir DIR \
             (or beside each input by default)",
        ));
    }
    Ok(())
}

/// Finds the inputs (arguments, then the `--files-from` list) and applies
/// the shard.
fn find(
    inputs: &[PathBuf],
    i: &InputArgs,
    v: Verbosity,
    keep: impl Fn(&Path) -> bool,
) -> Result<(Vec<walk::Entry>, Vec<Error>), Error> {
    let mut sources: Vec<Source> = Vec::new();
    for p in inputs {
        if p.as_os_str() == "-" {
            return Err(Error::usage(
                "`-` (stdin) is a single input; it cannot be part of a batch \
                 (for a list of paths on stdin use --files-from -)",
            ));
        }
        sources.push(Source::Arg(p.clone()));
    }
    if let Some(list) = &i.files_from {
        let bytes = read_list(list)?;
        sources.extend(
            walk::parse_list(&bytes, i.null)
                .into_iter()
                .map(Source::Listed),
        );
    }
    if sources.is_empty() {
        return Err(Error::usage("no input given"));
    }
    let found = walk::discover(
        &sources,
        WalkOptions {
            recursive: i.recursive,
        },
        keep,
    );
    if v.verbose {
        for (path, what) in &found.skipped {
            eprintln!("syncpipe: {}: skipped ({what})", path.display());
        }
    }
    let mut entries = found.entries;
    if let Some(shard) = i.shard {
        entries.retain(|e| shard.contains(&e.rel));
    }
    Ok((entries, found.failures))
}

fn read_list(list: &Path) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    if list.as_os_str() == "-" {
        crate::stdin_state::check_open()?;
        io::stdin().lock().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(list).map_err(|e| Error::io(e).with_path(list))?;
    }
    Ok(bytes)
}

/// Gives each entry its output; two inputs mapping to one output are both
/// kept out (which one wins would depend on timing).
fn name_outputs(
    entries: Vec<walk::Entry>,
    failures: &mut Vec<Error>,
    name: impl Fn(&walk::Entry) -> Result<PathBuf, Error>,
) -> Vec<BatchJob> {
    let mut named = Vec::with_capacity(entries.len());
    for e in entries {
        match name(&e) {
            Ok(out) => named.push((e, out)),
            Err(err) => failures.push(err),
        }
    }
    let mut seen: HashSet<OsString> = HashSet::new();
    let mut dup: HashSet<OsString> = HashSet::new();
    for (_, out) in &named {
        if !seen.insert(out.clone().into_os_string()) {
            dup.insert(out.clone().into_os_string());
        }
    }
    named
        .into_iter()
        .filter_map(|(e, out)| {
            if dup.contains(out.as_os_str()) {
                failures.push(
                    Error::usage(format!(
                        "another input has the same output {}",
                        out.display()
                    ))
                    .with_path(&e.path),
                );
                None
            } else {
                Some(BatchJob {
                    input: e.path,
                    output: Some(out),
                    size: e.size,
                })
            }
        })
        .collect()
}

/// The identities and secret for restore/verify, resolved once for the
/// batch: the secret when a key flag is given, or when the first input is
/// encrypted under one (its header says so; a later encrypted one without
/// a key fails on its own).
fn with_secret(
    builder: PipelineBuilder,
    keys: &KeyArgs,
    jobs: &[walk::Entry],
    verb: &str,
) -> Result<PipelineBuilder, Error> {
    // The first input stands for the batch only as to the passphrase: a
    // plaintext first file does not refuse the identities the rest need.
    let peeked = match jobs.first().map(|e| Peeked::file(&e.path)) {
        Some(p) if p.needs_secret() => p,
        _ => Peeked::Unknown,
    };
    keys.for_reading(builder, &peeked, &format!("{verb} encrypted inputs"))
}

/// The batch options from the flags; an `--optimize` preset fills the
/// scheduler and files in flight when their flags are not given.
fn options(
    pipeline: &Pipeline,
    i: &InputArgs,
    o: Option<&OutDirArgs>,
    s: Option<&SmallArgs>,
    force: bool,
) -> BatchOptions {
    let preset = pipeline.config().optimize.map(Optimize::preset);
    BatchOptions {
        scheduler: i
            .scheduler
            .or(preset.map(|p| p.scheduler))
            .unwrap_or_default(),
        batch_small: s.is_some_and(|s| s.batch_small),
        force,
        skip_existing: o.is_some_and(|o| o.skip_existing),
        files_in_flight: i
            .files_in_flight
            .or(preset.map(|p| p.files_in_flight))
            .unwrap_or(0),
        output_dir: o.and_then(|o| o.output_dir.clone()),
        // What killed runs left: the binary removes it, each folder once.
        sweep_stale_temps: true,
    }
}

/// Tells the telemetry what the batch is: its title, tuning and size (the
/// walk is done, so the total is known: progress, percent and ETA).
fn begin(tel: &Telemetry, pipeline: &Pipeline, jobs: &[BatchJob]) {
    let total = jobs.iter().map(|j| j.size).sum();
    tel.begin_batch(pipeline, jobs.len(), total);
}

/// Prints the failures (and, with -v, every file), then maps the outcomes
/// to the exit code: 0 all good, 5 some failed, the failures' own code (or
/// 1 when they differ) when all failed; a cancelled batch is an error, so
/// the caller maps it to 130/143.
fn finish(
    verb: &str,
    report: BatchReport,
    mut failures: Vec<Error>,
    v: Verbosity,
    tel: &Telemetry,
) -> Result<ExitCode, Error> {
    tel.batch_ran(report.files.len() == report.done());
    let mut cancelled = 0usize;
    let mut ok = 0usize;
    let mut skipped = 0usize;
    let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
    for f in report.files {
        match f.outcome {
            Outcome::Done(r) => {
                ok += 1;
                bytes_in += r.bytes_in;
                bytes_out += r.bytes_out;
                let output = f.output.as_ref().map(|p| p.display().to_string());
                tel.file_done(&f.input, output.as_deref().unwrap_or(""), &r);
                if v.verbose {
                    let to = f
                        .output
                        .as_ref()
                        .map(|p| format!(" -> {}", p.display()))
                        .unwrap_or_default();
                    eprintln!(
                        "{}{to}: {verb} {} => {} bytes, done at {:.3}s",
                        f.input.display(),
                        r.bytes_in,
                        r.bytes_out,
                        f.finished.as_secs_f64()
                    );
                }
            }
            Outcome::Skipped => {
                skipped += 1;
                if v.verbose {
                    eprintln!("{}: skipped (output exists)", f.input.display());
                }
            }
            Outcome::Failed(e) if e.kind() == ErrorKind::Cancelled => cancelled += 1,
            Outcome::Failed(e) => failures.push(e),
        }
    }
    // A rerun over finished outputs: one line for all of them, not one
    // per file (-v names each).
    let existing = failures.iter().filter(|e| e.is_existing_output()).count();
    for e in &failures {
        if !e.is_existing_output() || v.verbose {
            eprintln!("syncpipe: {e}");
        }
    }
    if existing > 0 {
        let (n, exist) = if existing == 1 {
            ("1 output", "exists")
        } else {
            ("outputs", "exist")
        };
        let n = if existing == 1 {
            n.to_string()
        } else {
            format!("{existing} {n}")
        };
        eprintln!(
            "syncpipe: {n} already {exist}, not overwritten; \
             --skip-existing skips them (finishing the batch), -f overwrites them"
        );
    }
    if shows_summary(v) {
        let secs = report.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { ok as f64 / secs } else { 0.0 };
        eprintln!(
            "syncpipe: {ok} files {verb}, {skipped} skipped, {} failed: {} => {} in {secs:.2}s \
             ({rate:.0} files/s)",
            failures.len() + cancelled,
            crate::size::format(bytes_in),
            crate::size::format(bytes_out),
        );
    }
    let code = exit_code(ok + skipped, &failures);
    // --json: an error line per failed file, and the counts in the summary.
    tel.batch_ended(failures, cancelled, skipped);
    if cancelled > 0 {
        if !v.quiet {
            eprintln!("syncpipe: {cancelled} files not finished (no partial outputs left)");
        }
        return Err(Error::cancelled());
    }
    Ok(code)
}

fn exit_code(good: usize, failures: &[Error]) -> ExitCode {
    match failures.first() {
        None => ExitCode::Success,
        Some(_) if good > 0 => ExitCode::BatchPartial,
        Some(first) => {
            let code = ExitCode::of(first, false);
            if failures.iter().all(|e| ExitCode::of(e, false) == code) {
                code
            } else {
                ExitCode::Runtime
            }
        }
    }
}
