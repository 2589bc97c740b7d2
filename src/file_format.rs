//! The formats a pipeline writes, and how an input's format is told from
//! its first bytes.

/// What [`crate::Pipeline`] writes when it processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// syncpipe's own container (`docs/format.md`): any stage list, a
    /// cipher, a whole-file digest, the mode bits, every parameter
    /// authenticated.
    #[default]
    Spipe,
    /// A standard `.zst` that `zstd -d` reads: one zstd frame per chunk
    /// (with its content size and zstd's checksum) and a seek table (the
    /// zstd seekable format). The stage list must be one zstd stage; no
    /// cipher, no whole-file digest.
    Zst,
    /// A standard `.gz` that `gzip -d` and `pigz -d` read: one gzip member
    /// per chunk, each recording its length in an extra subfield (which
    /// other readers skip), so that a restore finds them all without
    /// inflating. The stage list must be one gzip stage; no cipher, no
    /// whole-file digest.
    Gz,
    /// BGZF, the blocked gzip of the SAM/BAM specification that `bgzip`,
    /// htslib and samtools read with random access: gzip members of at
    /// most 64 KiB (65,280 input bytes each) with the `BC` size subfield,
    /// and the empty end-of-file block. A `.gz` for every other reader.
    /// As [`Format::Gz`]: one gzip stage.
    Bgzf,
    /// An age v1 file that `age -d` opens: encrypted to X25519 recipients
    /// ([`crate::PipelineBuilder::age_recipient`]) or under a passphrase
    /// (scrypt), in 64 KiB ChaCha20-Poly1305 pieces sealed on the workers.
    /// No stage (the input itself), or one zstd or gzip stage: the file
    /// then holds the `.zst` or `.gz` of the input (what
    /// `age -d | zstd -d` restores). No cipher stage, no whole-file digest.
    Age,
}

named_enum!(Format, "format", [
    Format::Spipe => "spipe",
    Format::Zst => "zst",
    Format::Gz => "gz",
    Format::Bgzf => "bgzf",
    Format::Age => "age",
]);

impl Format {
    /// The extension an output of this format gets (without the dot):
    /// BGZF files are `.gz` files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Bgzf => "gz",
            f => f.name(),
        }
    }

    /// The compression stage the format is made of (`zstd`, `gzip`), for
    /// the standard compressed formats.
    pub fn codec(self) -> Option<&'static str> {
        match self {
            Format::Spipe | Format::Age => None,
            Format::Zst => Some("zstd"),
            Format::Gz | Format::Bgzf => Some("gzip"),
        }
    }

    /// The format whose magic starts `first` (at least 22 bytes unless the
    /// input is shorter: BGZF's subfield is at bytes 12–15, age's version
    /// line is 22 bytes), if any. Any
    /// gzip file that is not BGZF is [`Format::Gz`].
    pub fn detect(first: &[u8]) -> Option<Format> {
        if first.starts_with(&crate::format::MAGIC) {
            Some(Format::Spipe)
        } else if crate::zst::is_zst(first) {
            Some(Format::Zst)
        } else if crate::gz::is_bgzf(first) {
            Some(Format::Bgzf)
        } else if crate::gz::is_gz(first) {
            Some(Format::Gz)
        } else if crate::age::is_age(first) {
            Some(Format::Age)
        } else {
            None
        }
    }
}

/// Bytes enough to tell every format apart (and an age file's kind of
/// stanza: [`crate::age::uses_passphrase`]).
pub(crate) const SNIFF_LEN: usize = 32;

/// An input whose first bytes were read to tell its format, put back in
/// front of the rest.
pub(crate) type Sniffed<R> = std::io::Chain<std::io::Cursor<Vec<u8>>, R>;

/// Reads the first bytes of `input` and tells its format, handing back a
/// reader that still yields every byte.
pub(crate) fn sniff<R: std::io::Read>(mut input: R) -> crate::Result<(Option<Format>, Sniffed<R>)> {
    let mut first = vec![0u8; SNIFF_LEN];
    let n = crate::format::read_full(&mut input, &mut first)?;
    first.truncate(n);
    let format = Format::detect(&first);
    Ok((
        format,
        std::io::Read::chain(std::io::Cursor::new(first), input),
    ))
}

/// The format of the regular file `file`, from its first bytes read in
/// place (the file's position does not move).
pub(crate) fn sniff_file(file: &std::fs::File) -> crate::Result<Option<Format>> {
    use std::os::unix::fs::FileExt;
    let mut first = [0u8; SNIFF_LEN];
    let mut n = 0;
    while n < SNIFF_LEN {
        match file.read_at(&mut first[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(crate::Error::io(e)),
        }
    }
    Ok(Format::detect(&first[..n]))
}

/// Whether the regular file `file` ends with BGZF's empty end-of-file
/// block. A BGZF file cut exactly at a block boundary is still a valid
/// `.gz` that restores without an error; the block is how a reader tells
/// (htslib warns when it is missing).
///
/// # Errors
///
/// [`crate::ErrorKind::Io`] if the file cannot be read.
pub fn bgzf_has_eof_block(file: &std::fs::File) -> crate::Result<bool> {
    use std::os::unix::fs::FileExt;
    let eof = &crate::gz::member::BGZF_EOF;
    let len = file.metadata().map_err(crate::Error::io)?.len();
    if len < eof.len() as u64 {
        return Ok(false);
    }
    let mut tail = [0u8; 28];
    file.read_exact_at(&mut tail, len - eof.len() as u64)
        .map_err(crate::Error::io)?;
    Ok(tail == *eof)
}
