//! The age format through the library: every size around the piece and
//! chunk boundaries, at 1, 2, 4 and 8 threads, round-trips through the
//! parallel file path, the stream path and the `std::io` adapters, alone
//! and around a `.zst` or `.gz`; X25519 recipients and an scrypt
//! passphrase; a wrong identity or passphrase is a wrong key, any change
//! or cut of the file an integrity failure, a costly scrypt stanza is
//! refused before the work. The real `age` reads and writes these files in
//! `cli/tests/age.rs`; `golden_age` reads what it wrote.

use std::fs;
use std::io;
use std::time::Instant;

use crate::common::{mixed_data, watchdog};
use crate::standard_formats::expect_integrity;
use syncpipe::stages::{parse_stages, StageSpec};
use syncpipe::{AgeIdentity, ErrorKind, Format, Overwrite, Pipeline, Secret};

const PIECE: usize = 64 << 10;
const SEALED: usize = PIECE + 16;
/// Two pieces a chunk: a chunk's first piece is its index times two.
const CHUNK: usize = 2 * PIECE;

fn writer(to: &AgeIdentity, stage: Option<StageSpec>, threads: usize) -> Pipeline {
    let b = Pipeline::builder()
        .format(Format::Age)
        .age_recipient(to.recipient())
        .chunk_size(CHUNK)
        .threads(threads);
    match stage {
        Some(s) => b.stage(s),
        None => b,
    }
    .build()
    .expect("an age pipeline")
}

fn reader(id: &AgeIdentity) -> Pipeline {
    Pipeline::builder()
        .age_identity(id.clone())
        .threads(2)
        .build()
        .expect("a reader")
}

fn sealed(id: &AgeIdentity, data: &[u8]) -> Vec<u8> {
    let mut file = Vec::new();
    writer(id, None, 2).run(data, &mut file).expect("run");
    file
}

#[test]
fn every_size_round_trips_alone_and_around_a_compressor() {
    watchdog(300, || {
        let id = AgeIdentity::generate().expect("identity");
        let back_reader = reader(&id);
        let dir = tempfile::tempdir().expect("tempdir");
        let stages = [None, Some(StageSpec::Zstd(3)), Some(StageSpec::Gzip(6))];
        for stage in stages {
            for threads in [1, 2, 4, 8] {
                let p = writer(&id, stage.clone(), threads);
                for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, CHUNK, CHUNK + 1, 3 << 20] {
                    let what = format!("{stage:?}, {len} bytes, {threads} threads");
                    let data = mixed_data(len, len as u64 + 3);
                    let (input, out, back) = (
                        dir.path().join("in"),
                        dir.path().join("in.age"),
                        dir.path().join("back"),
                    );
                    fs::write(&input, &data).expect("write");
                    let written = p
                        .process_path(&input, &out, Overwrite::Replace)
                        .expect("process");
                    let file = fs::read(&out).expect("read");
                    assert_eq!(written.bytes_out, file.len() as u64, "{what}");
                    assert_eq!(Format::detect(&file), Some(Format::Age), "{what}");
                    let restored = back_reader
                        .restore_path(&out, &back, Overwrite::Replace)
                        .expect("restore");
                    assert!(fs::read(&back).expect("read") == data, "{what}");
                    if stage.is_none() {
                        // Jobs of 16 pieces, opened in parallel.
                        let jobs = len.div_ceil(16 * PIECE).max(1) as u64;
                        assert_eq!(restored.chunks, jobs, "{what}");
                        let header = file.len() - sealed_len(len);
                        assert!(header < 300, "{what}: a header of {header} bytes");
                    }
                    assert_eq!(
                        back_reader
                            .verify_path(&out)
                            .expect("verify")
                            .original_bytes,
                        len as u64
                    );
                    let mut again = Vec::new();
                    back_reader
                        .restore(&file[..], &mut again)
                        .expect("stream restore");
                    assert!(again == data, "{what} (stream)");
                }
                assert!(p.governor().all_returned());
            }
        }
        assert!(back_reader.governor().all_returned());
    });
}

fn sealed_len(plain: usize) -> usize {
    plain + 16 * plain.div_ceil(PIECE).max(1) + 16
}

/// Each recipient opens the file with its own identity; another identity
/// is a wrong key (exit 4 on the command line), before any output exists.
#[test]
fn every_recipient_opens_it_and_another_identity_is_a_wrong_key() {
    let (a, b, c) = (
        AgeIdentity::generate().expect("a"),
        AgeIdentity::generate().expect("b"),
        AgeIdentity::generate().expect("c"),
    );
    let data = mixed_data(3 * PIECE, 5);
    let p = Pipeline::builder()
        .format(Format::Age)
        .age_recipient(a.recipient())
        .age_recipient(b.recipient())
        .build()
        .expect("two recipients");
    let mut file = Vec::new();
    p.run(&data[..], &mut file).expect("run");
    for id in [&a, &b] {
        let mut back = Vec::new();
        reader(id).restore(&file[..], &mut back).expect("opens");
        assert!(back == data);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("x.age"), &file).expect("write");
    let e = reader(&c)
        .restore_path(
            &dir.path().join("x.age"),
            &dir.path().join("x"),
            Overwrite::Refuse,
        )
        .expect_err("another identity");
    assert_eq!(e.kind(), ErrorKind::WrongKey, "{e}");
    assert_eq!(
        fs::read_dir(dir.path()).expect("list").count(),
        1,
        "no output"
    );
    let e = reader(&c)
        .restore(&file[..], io::sink())
        .expect_err("stream");
    assert_eq!(e.kind(), ErrorKind::WrongKey, "{e}");
    // No identity at all: says what is needed.
    let plain = Pipeline::builder().build().expect("plain");
    let e = plain
        .restore(&file[..], io::sink())
        .expect_err("no identity");
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    assert!(e.to_string().contains("identity"), "{e}");
}

/// Every byte of the file is covered: a flipped bit anywhere in the
/// header, the nonce or a piece, a cut inside a piece or at a piece
/// boundary, a swap of two pieces and bytes after the end all fail, on
/// the file path before any output.
#[test]
fn any_change_or_cut_is_an_integrity_failure() {
    watchdog(120, || {
        let id = AgeIdentity::generate().expect("identity");
        let data = mixed_data(40 * PIECE + 123, 8);
        let file = sealed(&id, &data);
        let p = reader(&id);
        let head = file.len() - sealed_len(data.len());
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        // The MAC's own line is checked, and the stanzas and nonce under it.
        for at in [
            30,
            head - 20,
            head - 5,
            head + 3,
            head + 16 + 100,
            file.len() - 1,
        ] {
            let mut f = file.clone();
            f[at] ^= 0x10;
            cases.push((format!("a bit flipped at {at}"), f));
        }
        let boundary = head + 17 * SEALED;
        cases.push(("cut at a piece boundary".into(), file[..boundary].to_vec()));
        cases.push((
            "cut at a job boundary".into(),
            file[..head + 16 * SEALED].to_vec(),
        ));
        cases.push(("cut inside a piece".into(), file[..boundary + 100].to_vec()));
        cases.push(("cut inside the header".into(), file[..head / 2].to_vec()));
        cases.push(("cut after the header".into(), file[..head].to_vec()));
        let mut swapped = file.clone();
        let (x, y) = (head + 2 * SEALED, head + 3 * SEALED);
        swapped[x..y].copy_from_slice(&file[y..y + SEALED]);
        swapped[y..y + SEALED].copy_from_slice(&file[x..y]);
        cases.push(("two pieces swapped".into(), swapped));
        let mut longer = file.clone();
        longer.extend_from_slice(&[0u8; 16]);
        cases.push(("an empty piece appended".into(), longer));
        for (what, f) in cases {
            let e = p.restore(&f[..], io::sink()).expect_err(&what);
            assert!(
                matches!(e.kind(), ErrorKind::Integrity | ErrorKind::WrongKey),
                "{what}: {e}"
            );
            // A flipped bit in the X25519 stanza makes the identity not
            // match (a wrong key); anything else is about the data.
            if e.kind() == ErrorKind::Integrity {
                expect_integrity(&p, &f, &what, None);
            }
        }
        assert!(p.governor().all_returned());
    });
}

/// A passphrase writes the scrypt stanza; the right one opens it, another
/// is a wrong key; a reader's bounds refuse a costly work factor before
/// the work, and an scrypt stanza beside another one.
#[test]
fn a_passphrase_file_opens_with_scrypt_within_the_bounds() {
    watchdog(120, || {
        let pw = || Secret::passphrase("correct horse").expect("pw");
        let p = Pipeline::builder()
            .format(Format::Age)
            .secret(pw())
            .age_work_factor(10)
            .build()
            .expect("passphrase");
        let data = mixed_data(PIECE + 7, 2);
        let mut file = Vec::new();
        p.run(&data[..], &mut file).expect("run");
        assert!(syncpipe::age::uses_passphrase(&file));
        let text = String::from_utf8_lossy(&file[..200]).into_owned();
        assert!(
            text.contains("\n-> scrypt ") && text.contains(" 10\n"),
            "{text}"
        );
        let open = |s: Secret| Pipeline::builder().secret(s).build().expect("reader");
        let mut back = Vec::new();
        open(pw()).restore(&file[..], &mut back).expect("opens");
        assert!(back == data);
        let e = open(Secret::passphrase("wrong").expect("pw"))
            .restore(&file[..], io::sink())
            .expect_err("wrong");
        assert_eq!(e.kind(), ErrorKind::WrongKey, "{e}");

        // The work factor raised to 40 and to 21 (2 GiB, over the default
        // limit): both refused at once, without the work.
        for (factor, kind) in [("40", ErrorKind::Integrity), ("21", ErrorKind::Resource)] {
            // Same length ("10" and the factor): only the stanza changes.
            let at = text.find(" 10\n").expect("work factor") + 1;
            let mut forged = file.clone();
            forged[at..at + 2].copy_from_slice(factor.as_bytes());
            let started = Instant::now();
            let e = open(pw())
                .restore(&forged[..], io::sink())
                .expect_err(factor);
            assert_eq!(e.kind(), kind, "2^{factor}: {e}");
            assert!(e.to_string().contains("work factor"), "{e}");
            assert!(started.elapsed().as_secs() < 5, "refused before the work");
        }
        // An scrypt stanza must be the only one.
        let id = AgeIdentity::generate().expect("id");
        let other = sealed(&id, b"x");
        let stanza_end = text.find("---").expect("mac line");
        let x25519 = String::from_utf8_lossy(&other).into_owned();
        let x_start = x25519.find("-> X25519").expect("stanza");
        let x_end = x25519.find("---").expect("mac");
        let mixed = [
            &file[..stanza_end],
            &x25519.as_bytes()[x_start..x_end],
            &file[stanza_end..],
        ]
        .concat();
        let e = open(pw())
            .restore(&mixed[..], io::sink())
            .expect_err("mixed");
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(e.to_string().contains("only"), "{e}");
    });
}

#[test]
fn the_builder_refuses_what_age_cannot_take() {
    let id = AgeIdentity::generate().expect("id");
    let base = || {
        Pipeline::builder()
            .format(Format::Age)
            .age_recipient(id.recipient())
    };
    let refused = |b: syncpipe::PipelineBuilder, what: &str| {
        let e = b.build().expect_err(what);
        assert_eq!(e.kind(), ErrorKind::Usage, "{what}: {e}");
        e.to_string()
    };
    let list = |s: &str| parse_stages(s).expect("list");
    assert!(refused(base().stages(list("lz4")), "lz4").contains("zstd or gzip"));
    assert!(refused(base().stages(list("brotli:5")), "brotli").contains("zstd or gzip"));
    assert!(refused(base().stages(list("zstd:3,sha256")), "digest").contains("sha256"));
    let e = refused(
        base()
            .stages(list("zstd:3,aes-256-gcm"))
            .secret(Secret::passphrase("pw").expect("pw")),
        "a cipher",
    );
    assert!(
        e.contains("own encryption") || e.contains("not both"),
        "{e}"
    );
    assert!(refused(Pipeline::builder().format(Format::Age), "nobody").contains("recipient"));
    assert!(
        refused(base().secret(Secret::passphrase("pw").expect("pw")), "both").contains("not both")
    );
    assert!(refused(
        Pipeline::builder()
            .format(Format::Age)
            .secret(Secret::key(&[1u8; 32]).expect("key")),
        "a raw key"
    )
    .contains("raw key"));
    assert!(refused(
        base().chunk_method(syncpipe::ChunkMethod::HillClimb),
        "hill climbing"
    )
    .contains("fixed"));
    assert!(refused(base().age_work_factor(23), "work factor").contains("work factor"));
    // The default stage list is empty: the input itself, no digest.
    let p = base().build().expect("defaults");
    assert!(p.stage_names().is_empty(), "{:?}", p.stage_names());
    assert_eq!(p.config().checksum, None);
}

/// An identity given for a file that is not age is refused, as a key
/// given for an unencrypted container: it may have been substituted.
#[test]
fn an_identity_for_a_plaintext_file_is_refused() {
    let id = AgeIdentity::generate().expect("id");
    let mut zst = Vec::new();
    Pipeline::builder()
        .format(Format::Zst)
        .stage(StageSpec::Zstd(3))
        .build()
        .expect("zst")
        .run(&b"hello"[..], &mut zst)
        .expect("run");
    let e = reader(&id)
        .restore(&zst[..], io::sink())
        .expect_err("plaintext");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}

/// The `std::io` adapters: a `ParWriter` writes an age file that a
/// `ParReader` with the identity reads back.
#[test]
fn the_io_adapters_write_and_read_age() {
    use std::io::{Read, Write};
    watchdog(60, || {
        let id = AgeIdentity::generate().expect("id");
        let data = mixed_data(5 * PIECE + 3, 17);
        for stage in [None, Some(StageSpec::Zstd(3))] {
            let mut w = writer(&id, stage.clone(), 2).par_writer(Vec::new());
            for piece in data.chunks(10_000) {
                w.write_all(piece).expect("write");
            }
            let written = w.finish().expect("finish");
            let mut back = Vec::new();
            reader(&id)
                .par_reader(&written[..])
                .read_to_end(&mut back)
                .expect("read");
            assert!(back == data, "{stage:?}");
        }
    });
}
