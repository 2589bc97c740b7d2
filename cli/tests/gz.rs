//! `--format gz` and `--format bgzf` against the real `gzip`, `pigz` and
//! `bgzip`: what syncpipe writes, each of them restores and `gzip -t`
//! tests (and `bgzip -r` indexes, which only a BGZF file allows); what
//! they write (one member, `pigz`'s blocks, BGZF, members concatenated),
//! syncpipe restores, in parallel or sequentially. Each case `cmp`s the
//! original. Damaged files exit 3 and leave nothing behind.
//!
//! Needs `gzip`, `pigz` and `bgzip` (Debian's tabix) on the PATH; without
//! them the tests say so and pass, unless `SYNCPIPE_REQUIRE_GZIP_TOOLS=1`
//! (CI sets it when it could install all three).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{mixed_data, watchdog};
use crate::real_tools::{have, inputs, ok, run};

const BIN: &str = env!("CARGO_BIN_EXE_syncpipe");
const CHUNK: usize = 64 << 10;
/// Input bytes per BGZF block (bgzip's and syncpipe's).
const BGZF_BLOCK: usize = 0xff00;
/// The empty block that ends a BGZF file (SAM/BAM specification, 4.1.2).
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0,
    0, 0, 0, 0, 0, 0, 0,
];

/// Whether `gzip`, `pigz` and `bgzip` are all there to test against.
fn have_tools() -> bool {
    have(&["gzip", "pigz", "bgzip"], "SYNCPIPE_REQUIRE_GZIP_TOOLS")
}

/// `script` under bash in `dir`, which must succeed (pipes, redirections).
fn sh(dir: &Path, script: &str) -> Output {
    ok(dir, "bash", &["-c", script])
}

fn exits_3(dir: &Path, args: &[&str]) -> Output {
    let out = run(dir, BIN, args);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

/// One member as syncpipe writes them: where it starts, its length (from
/// its size subfield), its XFL byte and its ISIZE.
#[derive(Debug, Clone, Copy)]
struct Member {
    at: usize,
    len: usize,
    xfl: u8,
    isize: u32,
}

/// Walks the members of `gz`, each of which must start with the size
/// subfield `id` (`SP`: 4 bytes, the length; `BC`: 2, the length minus
/// one), carry no name and MTIME 0, and which must end exactly at the
/// end of the file.
fn members(gz: &[u8], id: &[u8; 2]) -> Vec<Member> {
    let mut v = Vec::new();
    let mut at = 0;
    while at < gz.len() {
        let h = &gz[at..];
        assert_eq!(
            h[..4],
            [0x1f, 0x8b, 8, 0x04],
            "member at {at}: FEXTRA alone"
        );
        assert_eq!(h[4..8], [0; 4], "member at {at}: MTIME 0");
        assert_eq!(h[12..14], *id, "member at {at}: the size subfield");
        let len = match id {
            b"SP" => {
                assert_eq!(h[10..12], [8, 0], "XLEN");
                assert_eq!(h[14..16], [4, 0], "SP's length");
                u32::from_le_bytes(h[16..20].try_into().expect("4")) as usize
            }
            _ => {
                assert_eq!(h[10..12], [6, 0], "XLEN");
                assert_eq!(h[14..16], [2, 0], "BC's length");
                usize::from(u16::from_le_bytes([h[16], h[17]])) + 1
            }
        };
        assert!(
            at + len <= gz.len(),
            "member at {at} ({len} bytes) runs past the end"
        );
        let isize = u32::from_le_bytes(gz[at + len - 4..at + len].try_into().expect("4"));
        v.push(Member {
            at,
            len,
            xfl: h[8],
            isize,
        });
        at += len;
    }
    v
}

#[test]
fn the_tools_restore_what_syncpipe_writes() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // (format, level arguments, the XFL byte gzip would write there)
    let variants: [(&str, &[&str], u8); 5] = [
        ("gz", &[], 0),
        ("gz", &["-l", "1"], 4),
        ("gz", &["-s", "gzip:9"], 2),
        ("bgzf", &["-l", "1"], 0),
        ("bgzf", &["-l", "9"], 0),
    ];
    for (name, data) in inputs(CHUNK, &[BGZF_BLOCK - 1, BGZF_BLOCK, BGZF_BLOCK + 1]) {
        fs::write(d.join(&name), &data).expect("write");
        let gz = format!("{name}.gz");
        for (format, level, xfl) in variants {
            let what = format!("{name} --format {format} {level:?}");
            let mut args = vec![
                "-q",
                "process",
                &name,
                "--format",
                format,
                "--chunk-size",
                "64KiB",
                "-f",
            ];
            args.extend_from_slice(level);
            ok(d, BIN, &args);
            for tool in ["gzip", "pigz", "bgzip"] {
                let back = ok(d, tool, &["-dc", &gz]);
                assert!(back.stdout == data, "{what}: {tool} -dc differs");
            }
            ok(d, "gzip", &["-t", &gz]);
            let file = fs::read(d.join(&gz)).expect("read");
            if format == "gz" {
                // One member per chunk (an empty input still has one).
                let m = members(&file, b"SP");
                assert_eq!(m.len(), data.len().div_ceil(CHUNK).max(1), "{what}");
                for (i, m) in m.iter().enumerate() {
                    let want = CHUNK.min(data.len() - i * CHUNK);
                    assert_eq!(m.isize as usize, want, "{what}: member {i}");
                    assert_eq!(m.xfl, xfl, "{what}: member {i}'s XFL");
                }
            } else {
                ok(d, "bgzip", &["-t", &gz]);
                // Indexing reads the BC fields: refused for any other gzip.
                ok(d, "bgzip", &["-r", &gz]);
                assert!(file.ends_with(&BGZF_EOF), "{what}: no EOF block");
                let m = members(&file, b"BC");
                assert!(m.iter().all(|m| m.len <= 1 << 16), "{what}: {m:?}");
                assert!(
                    m.iter().all(|m| m.isize as usize <= BGZF_BLOCK),
                    "{what}: {m:?}"
                );
                let total: u64 = m.iter().map(|m| u64::from(m.isize)).sum();
                assert_eq!(total, data.len() as u64, "{what}");
                assert_eq!(m.last().expect("the EOF block").isize, 0, "{what}");
            }
        }
        // And syncpipe reads its own file back, under the stripped name.
        fs::remove_file(d.join(&name)).expect("rm");
        ok(d, BIN, &["-q", "restore", &gz]);
        assert!(fs::read(d.join(&name)).expect("read") == data, "{name}");
    }
}

#[test]
fn syncpipe_restores_what_the_tools_write() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = mixed_data((3 << 20) + 12_345, 21);
    fs::write(d.join("orig"), &data).expect("write");
    fs::write(d.join("a"), &data[..1 << 20]).expect("write");
    fs::write(d.join("b"), &data[1 << 20..]).expect("write");
    sh(d, "gzip -c orig > gzip.gz");
    sh(d, "gzip -9 -c orig > gzip9.gz");
    sh(d, "pigz -p2 -c orig > pigz.gz");
    sh(d, "bgzip -@2 -c orig > bgzip.gz");
    // Two members concatenated: one valid .gz (RFC 1952, 2.2).
    sh(
        d,
        "gzip -c a > a.gz && gzip -c b > b.gz && cat a.gz b.gz > joined.gz",
    );
    for f in ["gzip.gz", "gzip9.gz", "pigz.gz", "bgzip.gz", "joined.gz"] {
        let stem = f.strip_suffix(".gz").expect(".gz");
        ok(d, BIN, &["-q", "restore", f]);
        assert!(fs::read(d.join(stem)).expect("read") == data, "{f}");
        fs::remove_file(d.join(stem)).expect("rm");
        let out = ok(d, BIN, &["-q", "restore", f, "-c"]);
        assert!(out.stdout == data, "{f} -c");
        // From a pipe: one sequential decode.
        let piped = sh(d, &format!("'{BIN}' -q restore - -c < {f}"));
        assert!(piped.stdout == data, "{f} from stdin");
        ok(d, BIN, &["-q", "verify", f]);
        assert!(!d.join(stem).exists(), "{f}: verify wrote nothing");
    }
    // bgzip's blocks record their size: decoded in parallel, in jobs of
    // up to 1 MiB (16 blocks); gzip's member does not: one stream.
    let v = ok(d, BIN, &["-v", "restore", "bgzip.gz", "-o", "p", "-f"]);
    let err = String::from_utf8_lossy(&v.stderr).into_owned();
    assert!(err.contains("chunks 4,"), "{err}");
    let v = ok(d, BIN, &["-v", "restore", "gzip.gz", "-o", "s", "-f"]);
    let err = String::from_utf8_lossy(&v.stderr).into_owned();
    assert!(err.contains("chunks 0,"), "{err}");
    // And verify says which.
    let n = data.len();
    for (f, how) in [
        ("bgzip.gz", "4 chunks"),
        ("gzip.gz", "one sequential stream"),
    ] {
        let out = ok(d, BIN, &["verify", f]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(text, format!("{f}: ok ({n} bytes in {how})\n"));
    }
}

#[test]
fn a_damaged_gz_exits_3_and_leaves_nothing() {
    let tools = have_tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::write(d.join("x"), mixed_data(300_000, 5)).expect("write");
    ok(
        d,
        BIN,
        &[
            "-q",
            "process",
            "x",
            "--format",
            "gz",
            "--chunk-size",
            "64KiB",
            "-o",
            "ours.gz",
        ],
    );
    ok(
        d,
        BIN,
        &["-q", "process", "x", "--format", "bgzf", "-o", "bgzf.gz"],
    );
    let mut sources = vec!["ours.gz", "bgzf.gz"];
    if tools {
        sh(d, "gzip -c x > gzip.gz && bgzip -c x > bgzip.gz");
        sources.extend(["gzip.gz", "bgzip.gz"]);
    }
    fs::remove_file(d.join("x")).expect("rm");
    let mut damaged = Vec::new();
    for src in &sources {
        let z = fs::read(d.join(src)).expect("read");
        let cut = format!("cut-{src}");
        fs::write(d.join(&cut), &z[..z.len() / 2 + 3]).expect("write");
        let mut flipped = z.clone();
        flipped[z.len() / 2] ^= 0x20;
        let flip = format!("flip-{src}");
        fs::write(d.join(&flip), &flipped).expect("write");
        damaged.extend([cut, flip]);
    }
    // A size field forged to run past the end of the file: the last data
    // block's BC, and the last member's SP.
    let mut forged = Vec::new();
    for (src, id) in [("bgzf.gz", b"BC"), ("ours.gz", b"SP")] {
        let mut z = fs::read(d.join(src)).expect("read");
        let m = members(&z, id);
        let last = m[m.len() - if id == b"BC" { 2 } else { 1 }];
        assert!(last.isize > 0, "{src}: a data member");
        let f = match id {
            b"BC" => {
                z[last.at + 16..last.at + 18].copy_from_slice(&u16::MAX.to_le_bytes());
                "forged-bc.gz"
            }
            _ => {
                let past = (z.len() - last.at + 1) as u32;
                z[last.at + 16..last.at + 20].copy_from_slice(&past.to_le_bytes());
                "forged-sp.gz"
            }
        };
        fs::write(d.join(f), &z).expect("write");
        forged.push(f.to_string());
    }
    for f in damaged.iter().chain(&forged) {
        exits_3(d, &["restore", f]);
        exits_3(d, &["restore", f, "-o", "out"]);
        exits_3(d, &["verify", f]);
    }
    // Found while laying the file out, before anything is decoded: not
    // even a first chunk reaches stdout.
    for f in &forged {
        let out = exits_3(d, &["restore", f, "-c"]);
        assert!(out.stdout.is_empty(), "{f}: {} bytes out", out.stdout.len());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("past the end"), "{f}: {err}");
    }
    let mut want: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    want.extend(damaged);
    want.extend(forged);
    want.sort();
    assert_eq!(listing(d), want);
}

#[test]
fn format_flags_are_checked_and_restore_walks_a_folder() {
    let tools = have_tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = mixed_data(400_000, 9);
    fs::write(d.join("x"), &data).expect("write");
    fs::write(d.join("pw"), "secret\n").expect("write");
    fs::create_dir(d.join("tree")).expect("mkdir");
    for (args, says) in [
        (
            vec!["process", "x", "--format", "gz", "-s", "zstd:3"],
            "exactly one stage, gzip",
        ),
        (
            vec!["process", "x", "--format", "gz", "-s", "gzip:6,blake3"],
            "blake3",
        ),
        (
            vec![
                "process",
                "x",
                "--format",
                "bgzf",
                "-s",
                "gzip:6,aes-256-gcm",
                "--passphrase-file",
                "pw",
            ],
            "cannot be encrypted",
        ),
        (
            vec!["process", "-r", "tree", "--format", "gz", "--batch-small"],
            "--batch-small",
        ),
    ] {
        let out = run(d, BIN, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(listing(d), ["pw", "tree", "x"], "nothing written");
    // BGZF files are .gz files.
    ok(d, BIN, &["-q", "process", "x", "--format", "bgzf"]);
    let b = fs::read(d.join("x.gz")).expect("x.gz");
    assert_eq!(b[12..16], *b"BC\x02\x00", "a BGZF block first");
    assert!(b.ends_with(&BGZF_EOF));
    if tools {
        ok(d, "bgzip", &["-r", "x.gz"]);
    }
    // -l sets the gzip stage's level: XFL says so, and 9 packs tighter.
    for (level, xfl) in [("9", 2u8), ("1", 4)] {
        let o = format!("l{level}.gz");
        ok(
            d,
            BIN,
            &[
                "-q", "process", "x", "--format", "gz", "-l", level, "-o", &o,
            ],
        );
        let z = fs::read(d.join(&o)).expect("read");
        assert!(
            members(&z, b"SP").iter().all(|m| m.xfl == xfl),
            "-l {level}"
        );
        let back = ok(d, BIN, &["-q", "restore", &o, "-c"]);
        assert!(back.stdout == data, "-l {level}");
    }
    let l9 = fs::metadata(d.join("l9.gz")).expect("l9").len();
    let l1 = fs::metadata(d.join("l1.gz")).expect("l1").len();
    assert!(l9 < l1, "-l 9: {l9} bytes, -l 1: {l1}");
    // restore -r takes a folder's *.gz, whoever wrote them, and leaves
    // its other files alone.
    let files: Vec<_> = (0..5)
        .map(|i| mixed_data(10_000 + i * 70_000, i as u64))
        .collect();
    for (i, f) in files.iter().enumerate() {
        fs::write(d.join(format!("tree/f{i}")), f).expect("write");
    }
    fs::write(d.join("tree/notes.txt"), "not compressed\n").expect("write");
    ok(
        d,
        BIN,
        &["-q", "process", "tree/f0", "tree/f1", "--format", "gz"],
    );
    ok(
        d,
        BIN,
        &["-q", "process", "tree/f2", "tree/f3", "--format", "bgzf"],
    );
    if tools {
        sh(d, "gzip tree/f4");
    } else {
        ok(d, BIN, &["-q", "process", "tree/f4", "--format", "gz"]);
    }
    // The originals go (gzip has removed f4 already).
    for i in 0..5 {
        let p = d.join(format!("tree/f{i}"));
        if p.exists() {
            fs::remove_file(p).expect("rm");
        }
    }
    ok(d, BIN, &["-q", "verify", "-r", "tree"]);
    ok(d, BIN, &["-q", "restore", "-r", "tree"]);
    for (i, f) in files.iter().enumerate() {
        let back = fs::read(d.join(format!("tree/f{i}"))).expect("restored");
        assert!(back == *f, "f{i}");
    }
    assert_eq!(
        fs::read(d.join("tree/notes.txt")).expect("notes"),
        b"not compressed\n"
    );
    assert_eq!(listing(&d.join("tree")).len(), 11);
}

/// A restore into a closed pipe ends by SIGPIPE (exit 141) with no
/// message, in parallel (a file whose members record their size) or
/// sequentially (the same bytes from a pipe): a write's broken pipe is
/// not taken for corrupt data (exit 3).
#[test]
fn a_restore_into_a_closed_pipe_ends_by_sigpipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::write(d.join("x"), mixed_data(3 << 20, 3)).expect("write");
    ok(
        d,
        BIN,
        &[
            "-q",
            "process",
            "x",
            "--format",
            "gz",
            "--chunk-size",
            "64KiB",
        ],
    );
    ok(
        d,
        BIN,
        &["-q", "process", "x", "--format", "bgzf", "-o", "b.gz"],
    );
    for input in ["x.gz", "- < x.gz", "b.gz", "- < b.gz"] {
        let script = format!(
            "set -o pipefail; '{BIN}' restore {input} -c | head -c 10 >/dev/null; \
             echo \"status=${{PIPESTATUS[0]}}\""
        );
        let mut c = Command::new("bash");
        c.args(["-c", &script]).current_dir(d);
        let out = watchdog(60, move || c.output().expect("run bash"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "status=141",
            "{input}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{input}: no message"
        );
    }
}

/// `x.tgz` and `x.tzst` restore to `x.tar`, as `gzip -d` and `zstd -d`
/// name them, one file or a walk; a walk for process skips them.
#[test]
fn tar_short_forms_restore_to_tar() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = mixed_data(100_000, 8);
    fs::write(d.join("x"), &data).expect("write");
    for (format, name) in [("gz", "a.tgz"), ("zst", "b.tzst")] {
        ok(
            d,
            BIN,
            &["-q", "process", "x", "--format", format, "-o", name],
        );
    }
    ok(d, BIN, &["-q", "restore", "a.tgz"]);
    assert!(fs::read(d.join("a.tar")).expect("a.tar") == data);
    fs::create_dir(d.join("tree")).expect("mkdir");
    fs::rename(d.join("b.tzst"), d.join("tree/b.tzst")).expect("mv");
    ok(d, BIN, &["-q", "restore", "-r", "tree"]);
    assert!(fs::read(d.join("tree/b.tar")).expect("b.tar") == data);
    // process -r compresses the tar, not the .tzst beside it.
    ok(d, BIN, &["-q", "process", "-r", "tree"]);
    assert_eq!(listing(&d.join("tree")), ["b.tar", "b.tar.spipe", "b.tzst"]);
}

/// A BGZF file without its end-of-file block restores (it is a valid
/// `.gz`) but is warned about, as htslib does: it may have been cut at a
/// block boundary. `-q` silences it; a complete file gets no warning.
#[test]
fn a_bgzf_file_without_its_eof_block_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = mixed_data(200_000, 4);
    fs::write(d.join("x"), &data).expect("write");
    ok(
        d,
        BIN,
        &["-q", "process", "x", "--format", "bgzf", "-o", "whole.gz"],
    );
    let whole = fs::read(d.join("whole.gz")).expect("read");
    fs::write(d.join("cut.gz"), &whole[..whole.len() - BGZF_EOF.len()]).expect("write");
    let warning = "no BGZF end-of-file block";
    for args in [&["verify", "cut.gz"][..], &["restore", "cut.gz", "-c"]] {
        let out = ok(d, BIN, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains(warning), "{args:?}: {err}");
        let quiet = ok(d, BIN, &[&["-q"][..], args].concat());
        assert!(quiet.stderr.is_empty(), "{args:?} -q");
    }
    let out = ok(d, BIN, &["restore", "cut.gz", "-c"]);
    assert!(out.stdout == data);
    let out = ok(d, BIN, &["verify", "whole.gz"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(warning));
}
