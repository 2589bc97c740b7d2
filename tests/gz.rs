//! What is particular to the `.gz` formats through the library: the
//! writers' bytes are frozen; BGZF's blocks are laid out as the SAM/BAM
//! specification has them; the files `gzip`, `pigz` and `bgzip` write
//! restore through the path their layout allows (members that record no
//! size: one sequential stream); cut, flipped and forged files are
//! integrity errors that leave no output. The contract every standard
//! format keeps is in `standard_formats.rs`.
//!
//! The real tools read and write these files in `cli/tests/gz.rs`.

use std::fs;

use crate::common::{mixed_data, watchdog};
use crate::standard_formats::{
    expect_integrity, golden, golden_files_restore, golden_original, pipeline,
};
use syncpipe::gz::member::{self, BGZF_EOF};
use syncpipe::{Format, Overwrite};

/// The writers' bytes are frozen: the same input, level and chunk size
/// give the golden files (deflate's output is deterministic for one
/// library version, which `Cargo.lock` pins).
#[test]
fn the_writers_write_the_golden_bytes() {
    for (format, name) in [
        (Format::Gz, "syncpipe-gz6-64k.gz"),
        (Format::Bgzf, "syncpipe-bgzf6-64k.gz"),
    ] {
        let mut out = Vec::new();
        pipeline(format, 2)
            .run(&golden_original()[..], &mut out)
            .expect("run");
        assert!(out == golden(name), "the {format} writer's bytes changed");
    }
}

/// Every block holds at most 65,280 input bytes and 64 KiB of its own, its
/// `BC` subfield gives its size, and the file ends with the EOF block.
#[test]
fn bgzf_blocks_follow_the_specification() {
    let data = mixed_data(700_000, 5);
    let mut file = Vec::new();
    pipeline(Format::Bgzf, 2)
        .run(&data[..], &mut file)
        .expect("run");
    assert!(file.ends_with(&BGZF_EOF));
    let mut rest = &file[..];
    let (mut blocks, mut content) = (0, 0);
    while !rest.is_empty() {
        let head = member::parse_head(rest).expect("a block");
        assert_eq!(rest[12..16], *b"BC\x02\x00", "BC first in the extra field");
        let len = head.member_len.expect("BC") as usize;
        assert!(len <= 1 << 16);
        let isize = u32::from_le_bytes(rest[len - 4..len].try_into().expect("4")) as usize;
        assert!(isize <= 65280);
        content += isize;
        blocks += 1;
        rest = &rest[len..];
    }
    assert_eq!(content, data.len());
    // 64 KiB chunks are cut to whole blocks: 11 blocks of 65,280 bytes and
    // the rest, then the EOF block.
    assert_eq!(blocks, data.len().div_ceil(65280) + 1);
}

/// The tools' own files: gzip's and pigz's members record no size (one
/// sequential stream, no chunks); bgzip's BGZF blocks are decoded in
/// parallel, as are syncpipe's own members (ten of each, 614 KiB: one
/// job).
#[test]
fn files_written_by_the_tools_restore_through_the_right_path() {
    golden_files_restore(
        &pipeline(Format::Gz, 2),
        &[
            ("gzip-1.12-9.gz", 0),
            ("gzip-1.12-two-members.gz", 0),
            ("pigz-2.6-p2.gz", 0),
            ("bgzip-1.16-l6.gz", 1),
            ("syncpipe-bgzf6-64k.gz", 1),
            ("syncpipe-gz6-64k.gz", 1),
        ],
    );
}

#[test]
fn damaged_and_forged_files_are_integrity_errors_that_leave_nothing() {
    watchdog(120, || {
        let data = mixed_data(300_000, 3);
        for format in [Format::Gz, Format::Bgzf] {
            let p = pipeline(format, 2);
            let mut file = Vec::new();
            p.run(&data[..], &mut file).expect("run");
            let n = file.len();
            // Cut: the last member's size field points past the end.
            expect_integrity(&p, &file[..n - 40], "cut", None);
            // A flipped byte in the middle: CRC-32 or deflate fails.
            let mut flipped = file.clone();
            flipped[n / 2] ^= 0x10;
            expect_integrity(&p, &flipped, "flipped", None);
            // An ISIZE past any chunk: not laid out, and the stream decode
            // finds the member's length wrong.
            let mut long = file.clone();
            long[n - 4 - BGZF_EOF.len() * usize::from(format == Format::Bgzf)..][..4]
                .copy_from_slice(&u32::MAX.to_le_bytes());
            expect_integrity(&p, &long, "forged ISIZE", None);
        }
        // A forged BGZF size that runs past the end (the EOF block's) is
        // refused before any output; a stream decode, which does not read
        // BC, restores the intact data, as `gzip -d` does.
        let p = pipeline(Format::Bgzf, 2);
        let mut file = Vec::new();
        p.run(&data[..], &mut file).expect("run");
        let eof = file.len() - BGZF_EOF.len();
        file[eof + 16..eof + 18].copy_from_slice(&0xffffu16.to_le_bytes());
        let intact = Some(data.len() as u64);
        expect_integrity(&p, &file, "BC past the end", intact);
        // gzip's own file, cut: the sequential decode's truncation.
        let gzip = golden("gzip-1.12-9.gz");
        expect_integrity(&p, &gzip[..gzip.len() / 2], "gzip's file cut", None);
    });
}

/// Zero bytes after the last member are padding, as `gzip -d` takes them
/// (tar leaves them); other trailing bytes are refused.
#[test]
fn zero_padding_after_the_members_is_skipped_and_garbage_refused() {
    let p = pipeline(Format::Gz, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["gzip-1.12-9.gz", "syncpipe-gz6-64k.gz", "bgzip-1.16-l6.gz"] {
        let padded = [golden(name), vec![0u8; 10_000]].concat();
        let mut back = Vec::new();
        p.restore(&padded[..], &mut back).expect(name);
        assert!(back == golden_original(), "{name} (stream)");
        let (input, out) = (dir.path().join("padded.gz"), dir.path().join("back"));
        fs::write(&input, &padded).expect("write");
        p.restore_path(&input, &out, Overwrite::Replace)
            .expect(name);
        assert!(fs::read(&out).expect("read") == golden_original(), "{name}");
        let garbage = [golden(name), b"\0\0not gzip".to_vec()].concat();
        expect_integrity(&p, &garbage, "trailing garbage", None);
    }
}
