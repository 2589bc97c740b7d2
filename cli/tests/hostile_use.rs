//! What a hostile user, an odd input or an extreme flag does to the binary:
//! links and devices at output paths, links planted inside `--output-dir`,
//! modes against the umask, pipes and pseudo-files as inputs, numeric
//! flags out of range, and containers that ask for more memory or Argon2id
//! work than the reader allows. Every child runs under a deadline and is
//! killed if it passes it, so a hang fails the test and leaves nothing.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::mixed_data;

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");

/// Runs `cmd` (stdout and stderr captured, `input` on stdin), killing it
/// and failing the test if it is still running after `secs` seconds.
fn run_within(secs: u64, mut cmd: Command, input: Option<Vec<u8>>) -> Output {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let feeder = child.stdin.take().zip(input).map(|(mut w, data)| {
        thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {secs} s: {cmd:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        status,
        stdout: o.join().expect("stdout thread"),
        stderr: e.join().expect("stderr thread"),
    }
}

fn syncpipe(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).arg("-q").args(args);
    run_within(60, cmd, None)
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn expect(out: &Output, want: i32, needle: &str) {
    assert_eq!(code(out), want, "stderr: {}", stderr(out));
    assert!(
        stderr(out).contains(needle),
        "stderr lacks {needle:?}: {}",
        stderr(out)
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("in"), mixed_data(100_000, 1)).expect("input");
    dir
}

#[test]
fn a_symlink_at_the_output_is_an_existing_output_never_written_through() {
    let dir = setup();
    let d = dir.path();
    fs::write(d.join("victim"), b"precious").expect("victim");
    std::os::unix::fs::symlink("victim", d.join("out")).expect("link");
    // A dangling link too: it would create a file where it points.
    std::os::unix::fs::symlink("elsewhere", d.join("dangling")).expect("link");
    for out in ["out", "dangling"] {
        let r = syncpipe(d, &["process", "in", "-o", out]);
        expect(&r, 2, "already exists (a symbolic link); use -f");
        assert!(fs::symlink_metadata(d.join(out))
            .expect("still there")
            .file_type()
            .is_symlink());
    }
    assert!(!d.join("elsewhere").exists());
    // With -f the link itself is replaced by the container; its target
    // keeps its bytes.
    let r = syncpipe(d, &["process", "in", "-o", "out", "-f"]);
    expect(&r, 0, "");
    assert!(fs::symlink_metadata(d.join("out"))
        .expect("out")
        .file_type()
        .is_file());
    assert_eq!(fs::read(d.join("victim")).expect("victim"), b"precious");
    let r = syncpipe(d, &["restore", "out", "-o", "back"]);
    expect(&r, 0, "");
    assert_eq!(
        fs::read(d.join("back")).unwrap(),
        fs::read(d.join("in")).unwrap()
    );
}

#[test]
fn a_symlink_to_a_fifo_is_refused_without_force_and_replaced_with_it() {
    let dir = setup();
    let d = dir.path();
    mkfifo(&d.join("fifo"));
    std::os::unix::fs::symlink("fifo", d.join("out")).expect("link");
    // Opening the FIFO for writing would block (no reader): the deadline
    // catches a run that writes through the link.
    let r = syncpipe(d, &["process", "in", "-o", "out"]);
    expect(&r, 2, "already exists (a symbolic link)");
    let r = syncpipe(d, &["process", "in", "-o", "out", "-f"]);
    expect(&r, 0, "");
    assert!(fs::symlink_metadata(d.join("out"))
        .unwrap()
        .file_type()
        .is_file());
    assert!(fs::symlink_metadata(d.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn a_fifo_or_a_character_device_named_by_the_user_is_written_in_place() {
    let dir = setup();
    let d = dir.path();
    mkfifo(&d.join("pipe"));
    let fifo = d.join("pipe");
    let reader = thread::spawn(move || fs::read(fifo).expect("read the FIFO"));
    let r = syncpipe(d, &["process", "in", "-o", "pipe"]);
    expect(&r, 0, "");
    let container = reader.join().expect("reader");
    assert!(fs::symlink_metadata(d.join("pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    fs::write(d.join("c.spipe"), &container).expect("write");
    let r = syncpipe(d, &["restore", "c.spipe", "-o", "back"]);
    expect(&r, 0, "");
    assert_eq!(
        fs::read(d.join("back")).unwrap(),
        fs::read(d.join("in")).unwrap()
    );
    // /dev/null and the descriptor links need no -f either.
    for out in ["/dev/null", "/dev/stdout", "/dev/stderr"] {
        let r = syncpipe(d, &["process", "in", "-o", out]);
        expect(&r, 0, "");
    }
    assert_eq!(names(d), ["back", "c.spipe", "in", "pipe"]);
}

#[test]
fn a_block_device_needs_force() {
    if !is_root() {
        eprintln!("skipped: mknod of a block device needs root");
        return;
    }
    let dir = setup();
    let d = dir.path();
    // Major 7 is loop; a minor this high has no device behind it, so even
    // a forced write could not reach a disk.
    let node = d.join("blk");
    let status = Command::new("mknod")
        .arg(&node)
        .args(["b", "7", "250"])
        .status()
        .expect("mknod");
    assert!(status.success());
    let r = syncpipe(d, &["process", "in", "-o", "blk"]);
    expect(&r, 2, "is a block device; use -f");
    assert!(fs::symlink_metadata(&node)
        .unwrap()
        .file_type()
        .is_block_device());
    // A link to it is an existing output like any link: -f replaces the
    // link, never writes through it.
    std::os::unix::fs::symlink("blk", d.join("to-blk")).expect("link");
    let r = syncpipe(d, &["process", "in", "-o", "to-blk", "-f"]);
    expect(&r, 0, "");
    assert!(fs::symlink_metadata(d.join("to-blk"))
        .unwrap()
        .file_type()
        .is_file());
    assert!(fs::symlink_metadata(&node)
        .unwrap()
        .file_type()
        .is_block_device());
}

#[test]
fn a_link_planted_inside_the_output_folder_fails_its_file_only() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir_all(d.join("src/sub")).unwrap();
    fs::write(d.join("src/sub/planted"), b"x").unwrap();
    fs::write(d.join("src/good"), b"y").unwrap();
    fs::create_dir_all(d.join("out")).unwrap();
    fs::create_dir_all(d.join("victim")).unwrap();
    std::os::unix::fs::symlink("../victim", d.join("out/sub")).unwrap();
    let r = syncpipe(d, &["process", "-r", "src", "--output-dir", "out"]);
    expect(&r, 5, "is a symbolic link inside the output folder");
    assert!(
        names(&d.join("victim")).is_empty(),
        "written through the link"
    );
    assert_eq!(names(&d.join("out")), ["good.spipe", "sub"]);
    // Restore the same way: containers in a tree, the link in the output.
    fs::create_dir_all(d.join("cont/sub")).unwrap();
    fs::copy(d.join("out/good.spipe"), d.join("cont/sub/planted.spipe")).unwrap();
    fs::copy(d.join("out/good.spipe"), d.join("cont/good.spipe")).unwrap();
    fs::create_dir_all(d.join("rest")).unwrap();
    std::os::unix::fs::symlink("../victim", d.join("rest/sub")).unwrap();
    let r = syncpipe(d, &["restore", "-r", "cont", "--output-dir", "rest", "-f"]);
    expect(&r, 5, "is a symbolic link inside the output folder");
    assert!(
        names(&d.join("victim")).is_empty(),
        "written through the link"
    );
    assert_eq!(fs::read(d.join("rest/good")).unwrap(), b"y");
}

#[test]
fn links_and_fifos_at_batch_output_names_are_existing_outputs() {
    let dir = setup();
    let d = dir.path();
    fs::create_dir_all(d.join("src")).unwrap();
    fs::create_dir_all(d.join("out")).unwrap();
    for name in ["a", "b", "c"] {
        fs::write(d.join("src").join(name), name.repeat(1000)).unwrap();
    }
    fs::write(d.join("victim"), b"precious").unwrap();
    std::os::unix::fs::symlink("../victim", d.join("out/a.spipe")).unwrap();
    mkfifo(&d.join("out/b.spipe"));
    // Small files and streamed ones take different paths: both checked.
    for extra in [&[][..], &["--batch-small"][..]] {
        let mut args = vec!["process", "-r", "src", "--output-dir", "out"];
        args.extend_from_slice(extra);
        let r = syncpipe(d, &args);
        expect(&r, 5, "already exists (a symbolic link)");
        assert!(
            stderr(&r).contains("already exists (a FIFO)"),
            "{}",
            stderr(&r)
        );
        assert_eq!(fs::read(d.join("victim")).unwrap(), b"precious");
        fs::remove_file(d.join("out/c.spipe")).unwrap();
    }
    let r = syncpipe(d, &["process", "-r", "src", "--output-dir", "out", "-f"]);
    expect(&r, 0, "");
    for name in ["a.spipe", "b.spipe", "c.spipe"] {
        let t = fs::symlink_metadata(d.join("out").join(name)).unwrap();
        assert!(t.file_type().is_file(), "{name} is not a regular file");
    }
    assert_eq!(fs::read(d.join("victim")).unwrap(), b"precious");
}

/// A version-1 (unauthenticated) container of `data` whose header records
/// `mode`, its CRC fixed up.
fn container_with_mode(dir: &Path, data: &[u8], mode: u32) -> Vec<u8> {
    fs::write(dir.join("m.in"), data).unwrap();
    let r = syncpipe(dir, &["process", "m.in", "-o", "m.spipe", "-f"]);
    expect(&r, 0, "");
    let mut c = fs::read(dir.join("m.spipe")).unwrap();
    let body_len = u32::from_le_bytes(c[10..14].try_into().unwrap()) as usize;
    let end = 14 + body_len + 4;
    // magic 8, version 2, body length 4, flags 2, chunk size 4, length 8.
    c[28..32].copy_from_slice(&mode.to_le_bytes());
    let crc = crc32fast::hash(&c[..end - 4]);
    c[end - 4..end].copy_from_slice(&crc.to_le_bytes());
    fs::remove_file(dir.join("m.in")).unwrap();
    c
}

fn restore_under_umask(dir: &Path, umask: &str, args: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir)
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" -q restore {args}"))
        .arg(BIN);
    run_within(60, cmd, None)
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_restored_mode_is_never_wider_than_the_umask_allows() {
    let dir = setup();
    let d = dir.path();
    let c = container_with_mode(d, b"secret", 0o6777);
    fs::write(d.join("wide.spipe"), &c).unwrap();
    let r = restore_under_umask(d, "077", "wide.spipe -o a");
    expect(&r, 0, "");
    assert_eq!(mode_of(&d.join("a")), 0o700);
    let r = restore_under_umask(d, "022", "wide.spipe -o b");
    expect(&r, 0, "");
    assert_eq!(mode_of(&d.join("b")), 0o755);
    // Narrower than the umask: kept as recorded.
    fs::write(d.join("narrow.spipe"), container_with_mode(d, b"x", 0o640)).unwrap();
    let r = restore_under_umask(d, "022", "narrow.spipe -o c");
    expect(&r, 0, "");
    assert_eq!(mode_of(&d.join("c")), 0o640);
    // From stdin, and in a batch: the same rule.
    let r = restore_under_umask(d, "077", "- -o e < wide.spipe");
    expect(&r, 0, "");
    assert_eq!(mode_of(&d.join("e")), 0o700);
    fs::create_dir_all(d.join("batch")).unwrap();
    let r = restore_under_umask(d, "027", "wide.spipe narrow.spipe --output-dir batch");
    expect(&r, 0, "");
    assert_eq!(mode_of(&d.join("batch/wide")), 0o750);
    assert_eq!(mode_of(&d.join("batch/narrow")), 0o640);
}

#[test]
fn pipes_fifos_and_size_zero_pseudo_files_are_read_as_streams() {
    let dir = setup();
    let d = dir.path();
    let data = mixed_data(3 << 20, 9);
    // /dev/stdin fed by a pipe (as `<(cmd)` gives /dev/fd/N).
    let mut cmd = Command::new(BIN);
    cmd.current_dir(d)
        .args(["-q", "process", "/dev/stdin", "-o", "p.spipe"]);
    let r = run_within(60, cmd, Some(data.clone()));
    expect(&r, 0, "");
    let r = syncpipe(d, &["restore", "p.spipe", "-o", "p.out"]);
    expect(&r, 0, "");
    assert!(fs::read(d.join("p.out")).unwrap() == data);
    // A named pipe.
    mkfifo(&d.join("fifo"));
    let (fifo, copy) = (d.join("fifo"), data.clone());
    let writer = thread::spawn(move || fs::write(fifo, copy).expect("write the FIFO"));
    let r = syncpipe(d, &["process", "fifo", "-o", "f.spipe", "--reader", "mmap"]);
    expect(&r, 0, "");
    writer.join().unwrap();
    let r = syncpipe(d, &["restore", "f.spipe", "-o", "f.out"]);
    expect(&r, 0, "");
    assert!(fs::read(d.join("f.out")).unwrap() == data);
    // A pseudo-file of size 0 with content, alone and in a batch (next to
    // a real empty file, which stays an empty file).
    let version = fs::read("/proc/version").expect("/proc/version");
    assert_eq!(fs::metadata("/proc/version").unwrap().len(), 0);
    for reader in ["buffered", "mmap"] {
        let r = syncpipe(
            d,
            &[
                "process",
                "/proc/version",
                "-o",
                "v.spipe",
                "-f",
                "--reader",
                reader,
            ],
        );
        expect(&r, 0, "");
        let r = syncpipe(d, &["restore", "v.spipe", "-o", "v.out", "-f"]);
        expect(&r, 0, "");
        assert_eq!(fs::read(d.join("v.out")).unwrap(), version, "{reader}");
    }
    fs::write(d.join("empty"), b"").unwrap();
    fs::create_dir_all(d.join("b")).unwrap();
    let r = syncpipe(
        d,
        &[
            "process",
            "/proc/version",
            "empty",
            "--output-dir",
            "b",
            "--batch-small",
        ],
    );
    expect(&r, 0, "");
    let r = syncpipe(
        d,
        &[
            "restore",
            "b/version.spipe",
            "b/empty.spipe",
            "--output-dir",
            "r",
        ],
    );
    expect(&r, 0, "");
    assert_eq!(fs::read(d.join("r/version")).unwrap(), version);
    assert_eq!(fs::read(d.join("r/empty")).unwrap(), b"");
}

#[test]
fn numeric_flags_outside_their_ranges_are_refused_at_once() {
    let dir = setup();
    let d = dir.path();
    let cases: &[(&[&str], &str)] = &[
        (
            &["process", "in", "--channel-depth", "4294967295"],
            "0..=256",
        ),
        (
            &["process", "in", "--channel-depth", "18446744073709551615"],
            "0..=256",
        ),
        (
            &["process", "in", "--spawn-style", "threads", "-T", "100000"],
            "0..=1024",
        ),
        (&["process", "in", "-T", "100000"], "0..=1024"),
        (&["process", "in", "--cpu-tokens", "1025"], "0..=1024"),
        (&["process", "in", "--io-tokens", "99999"], "0..=1024"),
        (&["process", "in", "--chunk-size", "1"], "4 KiB ..= 64 MiB"),
        (
            &["process", "in", "--chunk-size", "4095"],
            "4 KiB ..= 64 MiB",
        ),
        (
            &["process", "in", "--chunk-size", "65MiB"],
            "4 KiB ..= 64 MiB",
        ),
        (
            &["process", "in", "in", "--files-in-flight", "5000"],
            "0..=1024",
        ),
        (
            &["restore", "x.spipe", "--max-memory", "1MiB"],
            "16 MiB ..= 1 TiB",
        ),
        (
            &["restore", "x.spipe", "--max-memory", "2TiB"],
            "16 MiB ..= 1 TiB",
        ),
        (&["verify", "x.spipe", "--max-kdf-passes", "0"], "1..=64"),
        (&["bench", "--runs", "0"], "1..=99"),
        (&["bench", "-T", "1,2,5000"], "0..=1024"),
        (&["bench", "--channel-depth", "300"], "0..=256"),
    ];
    for (args, range) in cases {
        let start = Instant::now();
        let r = syncpipe(d, args);
        expect(&r, 2, range);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{args:?} took {:?} to be refused",
            start.elapsed()
        );
    }
    // The ends of the ranges are accepted.
    let r = syncpipe(
        d,
        &[
            "process",
            "in",
            "-o",
            "edge.spipe",
            "--chunk-size",
            "4KiB",
            "-T",
            "1024",
            "--channel-depth",
            "256",
            "--cpu-tokens",
            "1024",
            "--io-tokens",
            "1024",
        ],
    );
    expect(&r, 0, "");
    let r = syncpipe(d, &["restore", "edge.spipe", "-c", "--max-memory", "16MiB"]);
    expect(&r, 0, "");
    assert!(r.stdout == fs::read(d.join("in")).unwrap());
}

/// An encrypted container under a fast passphrase, then its Argon2id
/// fields changed to (m KiB, t, p) with the header CRC fixed up: the key
/// check would fail, but only after the derivation it asks for.
fn hostile_kdf_container(dir: &Path, m: u32, t: u32, p: u32) -> Vec<u8> {
    fs::write(dir.join("pass"), b"correct horse\n").unwrap();
    let r = syncpipe(
        dir,
        &[
            "process",
            "in",
            "-o",
            "k.spipe",
            "-f",
            "-s",
            "zstd:3,aes-256-gcm,sha256",
            "--passphrase-file",
            "pass",
            "--argon2",
            "m=8200,t=1,p=1",
        ],
    );
    expect(&r, 0, "");
    let mut c = fs::read(dir.join("k.spipe")).unwrap();
    let body_len = u32::from_le_bytes(c[10..14].try_into().unwrap()) as usize;
    let end = 14 + body_len + 4;
    let mut old = Vec::new();
    for v in [8200u32, 1, 1] {
        old.extend_from_slice(&v.to_le_bytes());
    }
    let at = c[..end]
        .windows(12)
        .position(|w| w == old.as_slice())
        .expect("the Argon2id fields in the header");
    for (i, v) in [m, t, p].into_iter().enumerate() {
        c[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    let crc = crc32fast::hash(&c[..end - 4]);
    c[end - 4..end].copy_from_slice(&crc.to_le_bytes());
    c
}

#[test]
fn an_argon2id_cost_over_the_reader_limits_is_refused_before_any_work() {
    let dir = setup();
    let d = dir.path();
    // The writer's caps: 1 GiB, 64 passes, 16 lanes (minutes of work).
    fs::write(
        d.join("huge.spipe"),
        hostile_kdf_container(d, 1 << 20, 64, 16),
    )
    .unwrap();
    for cmd in ["restore", "verify"] {
        let start = Instant::now();
        let mut args = vec![cmd, "huge.spipe", "--passphrase-file", "pass"];
        if cmd == "restore" {
            args.extend(["-o", "huge.out"]);
        }
        let r = syncpipe(d, &args);
        expect(
            &r,
            1,
            "over the limit of 512 MiB; if the file is trusted, raise it (--max-memory",
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{cmd}: {:?}",
            start.elapsed()
        );
    }
    assert!(!d.join("huge.out").exists());
    // Passes over the limit, with little memory: refused the same way;
    // raised, the derivation runs and the tampered header fails its key
    // check.
    fs::write(d.join("slow.spipe"), hostile_kdf_container(d, 8200, 64, 1)).unwrap();
    let r = syncpipe(d, &["verify", "slow.spipe", "--passphrase-file", "pass"]);
    expect(
        &r,
        1,
        "asks for Argon2id with 64 passes, over the limit of 16",
    );
    let r = syncpipe(
        d,
        &[
            "verify",
            "slow.spipe",
            "--passphrase-file",
            "pass",
            "--max-kdf-passes",
            "64",
        ],
    );
    expect(&r, 4, "wrong passphrase");
    // In a batch, that file fails and the others are restored.
    fs::write(d.join("good.spipe"), hostile_kdf_container(d, 8200, 1, 1)).unwrap();
    fs::create_dir_all(d.join("o")).unwrap();
    let r = syncpipe(
        d,
        &[
            "restore",
            "huge.spipe",
            "good.spipe",
            "--output-dir",
            "o",
            "--passphrase-file",
            "pass",
        ],
    );
    expect(&r, 5, "--max-memory");
    assert_eq!(names(&d.join("o")), ["good"]);
}

/// Peak resident memory of a finished child, in bytes (`wait4`).
fn run_measured(dir: &Path, args: &[&str], limit_as: Option<u64>) -> (i32, String, u64) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .arg("-q")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(bytes) = limit_as {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
        // child between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let cap = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    // Reaped by wait4 below, for its rusage: std's wait is not used.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("spawn");
    let mut err = child.stderr.take().expect("stderr");
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; std's handle is not used after this.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (
        code,
        reader.join().expect("stderr"),
        usage.ru_maxrss as u64 * 1024,
    )
}

#[test]
fn large_chunks_are_restored_within_the_memory_limit_or_refused() {
    let dir = setup();
    let d = dir.path();
    // 640 MiB of zeros in 64 MiB chunks: a container of a few KiB whose
    // every chunk decodes to 64 MiB (what a hostile file would declare).
    let mut cmd = Command::new(BIN);
    cmd.current_dir(d).args([
        "-q",
        "process",
        "-",
        "-o",
        "z.spipe",
        "--chunk-size",
        "64MiB",
    ]);
    let r = run_within(120, cmd, Some(vec![0u8; 640 << 20]));
    expect(&r, 0, "");
    assert!(fs::metadata(d.join("z.spipe")).unwrap().len() < 1 << 20);
    // Below 8 chunks of memory: refused before anything is written.
    let (c, err, _) = run_measured(
        d,
        &[
            "restore",
            "z.spipe",
            "-o",
            "z.out",
            "--max-memory",
            "256MiB",
        ],
        None,
    );
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("need more memory than the limit of 256 MiB"),
        "{err}"
    );
    assert!(!d.join("z.out").exists());
    // The default limit: the chunks run with fewer in flight, and the
    // process stays within the limit (plus its own code and stacks).
    let (c, err, peak) = run_measured(d, &["verify", "z.spipe"], None);
    assert_eq!(c, 0, "{err}");
    assert!(peak < (512 + 64) << 20, "peak RSS {} MiB", peak >> 20);
    // Memory the process cannot have: an error of the run, not an abort.
    let (c, err, _) = run_measured(d, &["restore", "z.spipe", "-o", "z.out"], Some(200 << 20));
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("out of memory"), "{err}");
    assert!(!d.join("z.out").exists());
    assert_eq!(names(d), ["in", "z.spipe"]);
}
