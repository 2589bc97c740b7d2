//! Creating an output through the library removes no other file: the temp
//! file a killed run left stays until a program asks for the sweep
//! (`output::remove_stale_temps`, or a batch's `sweep_stale_temps`).

use std::fs;
use std::path::{Path, PathBuf};

use syncpipe::output::{remove_stale_temps, this_host, TEMP_MARKER};
use syncpipe::{BatchJob, BatchOptions, Overwrite, Pipeline};

/// A temp file in `dir` as a killed run of this host leaves it: its
/// process has exited and been reaped.
fn left_by_a_killed_run(dir: &Path, name: &str) -> PathBuf {
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let gone = child.id();
    child.wait().expect("wait");
    let path = dir.join(format!(
        ".{name}{TEMP_MARKER}{}.{gone}.Ab12Cd34",
        this_host()
    ));
    fs::write(&path, b"partial container").expect("write");
    path
}

fn pipeline() -> Pipeline {
    Pipeline::builder().threads(2).build().expect("build")
}

fn batch(dir: &Path, input: &Path, sweep_stale_temps: bool) -> usize {
    let name = input.file_name().expect("name").to_string_lossy();
    let jobs = vec![BatchJob {
        input: input.to_path_buf(),
        output: Some(dir.join(format!("{name}.{sweep_stale_temps}.spipe"))),
        size: fs::metadata(input).expect("meta").len(),
    }];
    let options = BatchOptions {
        // The small-file path: its outputs are unnamed (`O_TMPFILE`).
        batch_small: true,
        sweep_stale_temps,
        ..BatchOptions::default()
    };
    pipeline().process_batch(jobs, &options).done()
}

#[test]
fn outputs_leave_a_killed_runs_temp_file_and_the_sweep_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let stale = left_by_a_killed_run(d, "old.spipe");
    let input = d.join("in.bin");
    fs::write(
        &input,
        (0..50_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .expect("input");

    // A named temp file (process_path, restore_path) and an unnamed one (a
    // batch's small file, without the option): none sweeps the folder.
    let p = pipeline();
    p.process_path(&input, &d.join("in.bin.spipe"), Overwrite::Refuse)
        .expect("process");
    p.restore_path(
        &d.join("in.bin.spipe"),
        &d.join("back.bin"),
        Overwrite::Refuse,
    )
    .expect("restore");
    assert_eq!(
        fs::read(d.join("back.bin")).expect("back"),
        fs::read(&input).expect("in")
    );
    assert_eq!(batch(d, &input, false), 1);
    assert!(stale.exists(), "an output removed a file it did not create");

    // The explicit call removes it, and only it.
    assert_eq!(remove_stale_temps(d).expect("sweep"), vec![stale.clone()]);
    assert!(!stale.exists());

    // A batch asked to sweep removes it from the folder it writes into.
    let stale = left_by_a_killed_run(d, "older.spipe");
    assert_eq!(batch(d, &input, true), 1);
    assert!(!stale.exists(), "the batch's sweep left a stale temp file");
}
