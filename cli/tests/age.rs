//! `--format age` against the real `age` and `age-keygen`: what syncpipe
//! writes (alone, or around a `.zst`), `age -d` opens and `cmp`s; what
//! `age` writes (to X25519 recipients, under a passphrase, around a
//! `zstd` stream), syncpipe restores and verifies, from a file in
//! parallel and from stdin. A passphrase goes to `age` through a real
//! pseudo-terminal, as age reads it from its controlling terminal. A wrong
//! identity exits 4, a changed or cut file exits 3, and neither leaves
//! anything behind.
//!
//! Needs `age` and `age-keygen` (and `zstd` for the nested cases) on the
//! PATH; without them the tests say so and pass, unless
//! `SYNCPIPE_REQUIRE_AGE=1` (CI sets it when it could install them).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::watchdog;
use crate::real_tools::{have, inputs, ok, run};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const PIECE: usize = 64 << 10;
const THREADS: [&str; 4] = ["1", "2", "4", "8"];

fn have_tools() -> bool {
    have(&["age", "age-keygen", "zstd"], "SYNCPIPE_REQUIRE_AGE")
}

/// A new identity file `name` in `dir` (by `age-keygen`), and its
/// recipient.
fn keygen(dir: &Path, name: &str) -> String {
    ok(dir, "age-keygen", &["-o", name]);
    let text = fs::read_to_string(dir.join(name)).expect("identity");
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("the public key comment")
        .to_string()
}

fn sh(dir: &Path, script: &str) -> Output {
    ok(dir, "bash", &["-c", script])
}

fn exits(dir: &Path, code: i32, args: &[&str]) -> String {
    let out = run(dir, BIN, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    err
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn age_opens_what_syncpipe_writes() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let r = keygen(d, "key.txt");
    for (name, data) in inputs(2 * PIECE, &[PIECE - 1, PIECE, PIECE + 1]) {
        fs::write(d.join(&name), &data).expect("write");
        for t in THREADS {
            let what = format!("{name}, -T {t}");
            ok(
                d,
                BIN,
                &[
                    "process",
                    &name,
                    "--format",
                    "age",
                    "--recipient",
                    &r,
                    "--chunk-size",
                    "128KiB",
                    "-T",
                    t,
                    "-f",
                    "-q",
                ],
            );
            // To stdout: `age -d -o` creates no file for an empty plaintext.
            sh(d, &format!("age -d -i key.txt '{name}.age' > back"));
            assert!(fs::read(d.join("back")).expect("read") == data, "{what}");
            // Around a .zst: what `age -d | zstd -d` restores.
            ok(
                d,
                BIN,
                &[
                    "process",
                    &name,
                    "--format",
                    "age",
                    "-s",
                    "zstd:3",
                    "-i",
                    "key.txt",
                    "--chunk-size",
                    "128KiB",
                    "-T",
                    t,
                    "-f",
                    "-q",
                ],
            );
            sh(
                d,
                &format!("age -d -i key.txt '{name}.zst.age' | zstd -d -q -o back -f"),
            );
            assert!(
                fs::read(d.join("back")).expect("read") == data,
                "{what} (zstd)"
            );
        }
    }
}

#[test]
fn syncpipe_restores_what_age_writes() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let r = keygen(d, "key.txt");
    let other = keygen(d, "other.txt");
    for (name, data) in inputs(PIECE, &[16 * PIECE, 16 * PIECE + 1]) {
        fs::write(d.join(&name), &data).expect("write");
        // The identity matches the second stanza.
        ok(d, "age", &["-r", &other, "-r", &r, "-o", "x.age", &name]);
        sh(d, &format!("zstd -q -c '{name}' | age -r {r} > z.zst.age"));
        for t in THREADS {
            let what = format!("{name}, -T {t}");
            ok(
                d,
                BIN,
                &["restore", "x.age", "-i", "key.txt", "-T", t, "-f", "-q"],
            );
            assert!(fs::read(d.join("x")).expect("read") == data, "{what}");
            ok(d, BIN, &["verify", "x.age", "-i", "key.txt", "-T", t, "-q"]);
            ok(
                d,
                BIN,
                &["restore", "z.zst.age", "-i", "key.txt", "-T", t, "-f", "-q"],
            );
            assert!(
                fs::read(d.join("z")).expect("read") == data,
                "{what} (zstd)"
            );
        }
        let piped = sh(
            d,
            "cat x.age | $BIN restore - -i key.txt -c"
                .replace("$BIN", BIN)
                .as_str(),
        );
        assert!(piped.stdout == data, "{name} from stdin");
    }
}

/// The passphrase both ways: `age -p` and `age -d` are driven through a
/// pseudo-terminal; syncpipe reads it from a file, as always.
#[test]
fn a_passphrase_file_goes_both_ways() {
    if !have_tools() {
        return;
    }
    watchdog(120, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let data = crate::common::mixed_data(3 * PIECE + 5, 4);
        fs::write(d.join("in"), &data).expect("write");
        fs::write(d.join("pw"), "it is a secret\n").expect("write");
        ok(
            d,
            BIN,
            &[
                "process",
                "in",
                "--format",
                "age",
                "--passphrase-file",
                "pw",
                "--work-factor",
                "12",
                "-q",
            ],
        );
        let head = fs::read(d.join("in.age")).expect("read");
        assert!(
            String::from_utf8_lossy(&head[..80]).contains("-> scrypt "),
            "an scrypt stanza"
        );
        assert_eq!(
            at_terminal(d, "it is a secret", &["age", "-d", "-o", "back", "in.age"]),
            0
        );
        assert!(fs::read(d.join("back")).expect("read") == data, "age -d");
        assert_eq!(
            at_terminal(
                d,
                "it is a secret",
                &["age", "-p", "-o", "theirs.age", "in"]
            ),
            0
        );
        ok(
            d,
            BIN,
            &[
                "restore",
                "theirs.age",
                "--passphrase-file",
                "pw",
                "-o",
                "mine",
                "-q",
            ],
        );
        assert!(
            fs::read(d.join("mine")).expect("read") == data,
            "syncpipe restore"
        );
        fs::write(d.join("bad"), "not it\n").expect("write");
        exits(
            d,
            4,
            &[
                "restore",
                "theirs.age",
                "--passphrase-file",
                "bad",
                "-o",
                "nope",
            ],
        );
        assert!(!d.join("nope").exists());
    });
}

/// Runs `argv` with a new pseudo-terminal as its controlling terminal,
/// answering every passphrase prompt it prints with `passphrase`; its exit
/// code.
fn at_terminal(dir: &Path, passphrase: &str, argv: &[&str]) -> i32 {
    let (mut m, mut s) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the ints passed; name,
    // termios and size may be null.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both were just opened and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    for fd in [m, s] {
        // SAFETY: F_SETFD on descriptors this test owns; other tests'
        // children must not inherit them.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let slave_fd = slave.as_raw_fd();
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::from(slave.try_clone().expect("dup"))));
    // SAFETY: between fork and exec only async-signal-safe calls: a new
    // session, then the terminal made its controlling one.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start");
    drop(cmd);
    drop(slave);
    let mut term = File::from(master);
    let mut seen = Vec::new();
    let mut answered = 0;
    let mut buf = [0u8; 1024];
    // EIO once the child has closed the terminal: it has ended.
    while let Ok(n) = term.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        let prompts = seen.windows(10).filter(|w| *w == b"passphrase").count();
        while answered < prompts {
            term.write_all(format!("{passphrase}\n").as_bytes())
                .expect("answer");
            answered += 1;
        }
    }
    child.wait().expect("wait").code().unwrap_or(-1)
}

/// A wrong identity exits 4, a flipped byte or a cut at a piece boundary
/// exits 3; nothing is left behind either way.
#[test]
fn a_wrong_identity_exits_4_and_damage_exits_3() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let r = keygen(d, "key.txt");
    keygen(d, "other.txt");
    let data = crate::common::mixed_data(5 * PIECE, 9);
    fs::write(d.join("in"), &data).expect("write");
    ok(d, "age", &["-r", &r, "-o", "in.age", "in"]);
    let before = names(d);
    let err = exits(d, 4, &["restore", "in.age", "-i", "other.txt", "-o", "out"]);
    assert!(err.contains("no identity"), "{err}");
    exits(d, 2, &["restore", "in.age", "-o", "out"]);
    let file = fs::read(d.join("in.age")).expect("read");
    let head = file.len() - (data.len() + 5 * 16 + 16);
    let mut flipped = file.clone();
    flipped[head + 16 + 2 * (PIECE + 16) + 7] ^= 1;
    fs::write(d.join("flipped.age"), &flipped).expect("write");
    fs::write(d.join("cut.age"), &file[..head + 16 + 3 * (PIECE + 16)]).expect("write");
    let before_damage = names(d);
    for f in ["flipped.age", "cut.age"] {
        exits(d, 3, &["restore", f, "-i", "key.txt", "-o", "out"]);
        exits(d, 3, &["verify", f, "-i", "key.txt"]);
        let piped = run(
            d,
            "bash",
            &[
                "-c",
                &format!("{BIN} restore - -i key.txt -c < {f} > /dev/null"),
            ],
        );
        assert_eq!(piped.status.code(), Some(3), "{f} from stdin");
    }
    assert_eq!(names(d), before_damage, "no output, no temp");
    assert!(before.iter().all(|n| names(d).contains(n)));
    // The real age refuses our damaged files too: the format is the same.
    let theirs = run(d, "age", &["-d", "-i", "key.txt", "cut.age"]);
    assert!(!theirs.status.success(), "age -d of a cut file");
}

/// Names, walks and refusals on the command line.
#[test]
fn names_walks_and_refusals_follow_the_format() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let r = keygen(d, "key.txt");
    fs::create_dir(d.join("tree")).expect("mkdir");
    fs::write(d.join("tree/a.txt"), b"alpha").expect("write");
    fs::write(d.join("tree/b.txt"), b"bravo").expect("write");
    fs::write(d.join("recipients"), format!("# mine\n{r}\n\n")).expect("write");
    // -r walks and -R reads a recipients file; the outputs are INPUT.age.
    ok(
        d,
        BIN,
        &[
            "process",
            "-r",
            "tree",
            "--format",
            "age",
            "-R",
            "recipients",
            "-q",
        ],
    );
    assert!(d.join("tree/a.txt.age").exists() && d.join("tree/b.txt.age").exists());
    fs::remove_file(d.join("tree/a.txt")).expect("rm");
    fs::remove_file(d.join("tree/b.txt")).expect("rm");
    // restore -r takes the .age files back (a rerun of process skips them).
    ok(d, BIN, &["restore", "-r", "tree", "-i", "key.txt", "-q"]);
    assert_eq!(fs::read(d.join("tree/a.txt")).expect("read"), b"alpha");
    // x.zst.age restores to x.
    ok(
        d,
        BIN,
        &[
            "process",
            "tree/a.txt",
            "--format",
            "age",
            "-s",
            "zstd:19",
            "--recipient",
            &r,
            "-q",
        ],
    );
    fs::remove_file(d.join("tree/a.txt")).expect("rm");
    ok(
        d,
        BIN,
        &["restore", "tree/a.txt.zst.age", "-i", "key.txt", "-q"],
    );
    assert_eq!(fs::read(d.join("tree/a.txt")).expect("read"), b"alpha");
    // Refused with a clear word: a recipient without the age format, a
    // passphrase beside recipients, a stage age cannot hold, a bad key.
    let err = exits(d, 2, &["process", "tree/a.txt", "--recipient", &r, "-c"]);
    assert!(err.contains("--format age"), "{err}");
    fs::write(d.join("pw"), "pw\n").expect("write");
    for (extra, says) in [
        (
            &["--recipient", &r, "--passphrase-file", "pw"][..],
            "not both",
        ),
        (&["--recipient", &r, "-s", "lz4"][..], "zstd or gzip"),
        (&["--recipient", "age1xyz"][..], "not an age recipient"),
        (&["--recipient", &r, "-l", "5"][..], "-s names one"),
    ] {
        let args = [
            &["process", "tree/a.txt", "--format", "age", "-c"][..],
            extra,
        ]
        .concat();
        let err = exits(d, 2, &args);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    // info says what an age file is; an armored one is refused with a note.
    let err = exits(d, 3, &["info", "tree/b.txt.age"]);
    assert!(err.contains("an age file"), "{err}");
    ok(
        d,
        "age",
        &["-a", "-r", &r, "-o", "armored.age", "recipients"],
    );
    let err = exits(
        d,
        2,
        &["restore", "armored.age", "-i", "key.txt", "-o", "x"],
    );
    assert!(err.contains("armored"), "{err}");
    // An identity for a plaintext input is refused (it may be substituted).
    ok(d, BIN, &["process", "recipients", "--format", "zst", "-q"]);
    let err = exits(
        d,
        3,
        &["restore", "recipients.zst", "-i", "key.txt", "-o", "x"],
    );
    assert!(err.contains("identity"), "{err}");
}
