//! Restoring one stream: the header read and its key checked before any
//! record, then records split by the reader, decoded and checked on the CPU
//! workers, written in order, and the whole-file digest checked at the end.

use std::io::{Read, Write};
use std::time::Instant;

use super::reader;
use super::writer::Sink;
use crate::batch::SMALL_FILE_MAX;
use crate::chunk::{self, ChainStage, Codec};
use crate::cipher::FileKeys;
use crate::error::{Error, Result};
use crate::file_format::{sniff, Format};
use crate::format::{Header, Kdf, Trailer, CUSTOM_STAGE_ID};
use crate::pipeline::Pipeline;
use crate::report::Report;
use crate::stages::{Hasher, StageSpec};

/// A header read and, if encrypted, opened.
pub(crate) struct Opened {
    pub header: Header,
    pub header_len: u64,
    pub keys: Option<FileKeys>,
}

impl Pipeline {
    pub(crate) fn restore_stream<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        sniff(input)
            .and_then(|(format, mut input)| match format {
                Some(f) if f != Format::Spipe => self.restore_sequential(f, input, output),
                _ => self
                    .open_header(&mut input)
                    .and_then(|opened| self.restore_body(opened, input, output)),
            })
            .inspect_err(|_| self.failed())
    }

    /// Restores the records that follow an already opened header.
    pub(crate) fn restore_body<R: Read + Send, W: Write + Send>(
        &self,
        opened: Opened,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        // A small file's few chunks cost less than the engine's threads:
        // restored on this thread (see `small_file.rs`).
        if opened
            .header
            .original_len
            .is_some_and(|n| n < SMALL_FILE_MAX)
        {
            return self.restore_small(opened, input, output);
        }
        let start = Instant::now();
        let Opened {
            header,
            header_len,
            keys,
        } = opened;
        let chain = self.chain_for(&header)?;
        let codec = restore_codec(&header, &chain, keys.as_ref());
        let cipher = header.crypto.as_ref().map(|c| c.cipher);
        let (depth, in_flight) = self.restore_window_for(&header)?;
        let cpu = self.cpu()?;
        let _active = self.begin_run();
        let window = (depth, in_flight);
        let mut state = self.new_state(header.chunk_size, window, &chain, cipher, header.checksum);
        state.in_flight = in_flight;
        let mut sink = Sink::new(output);
        let mut hasher = header.checksum.map(|c| c.hasher());
        let mut chunks = 0u64;
        let mut container_bytes = 0u64;
        let result = {
            let (sink, hasher, state, header) = (&mut sink, &mut hasher, &state, &header);
            let (codec, chunks) = (&codec, &mut chunks);
            super::run(
                state,
                cpu,
                depth,
                |tx| {
                    let mut counted = super::Counting {
                        inner: input,
                        bytes: 0,
                    };
                    let t = reader::read_records(state, &mut counted, header, tx);
                    container_bytes = counted.bytes;
                    t
                },
                |_, sealed| chunk::decode(codec, &state.buffers, sealed),
                |data| {
                    *chunks += 1;
                    sink.write_plain(state, data, hasher.as_mut())
                },
            )
        };
        self.settle(&state);
        let trailer = result?;
        let digest = check_file_digest(&header, keys.as_ref(), hasher, &trailer)?;
        let (output, bytes_out) = sink.finish(&state)?;
        let mut report = self.report(&state, start);
        report.bytes_in = header_len + container_bytes;
        report.bytes_out = bytes_out;
        report.original_bytes = bytes_out;
        report.chunks = chunks;
        report.checksum = header.checksum;
        report.digest = digest;
        report.mode = Some(header.mode);
        report.chunk_size = header.chunk_size;
        self.run_done(&report)?;
        Ok((output, report))
    }

    /// Reads the header and, for an encrypted container, derives the file's
    /// keys, checks the key and authenticates the header: all before a
    /// single record is read.
    pub(crate) fn open_header(&self, input: &mut impl Read) -> Result<Opened> {
        let (header, raw) = Header::read_with_bytes(input)?;
        let keys = match &header.crypto {
            // A secret means "this should be encrypted": an unencrypted
            // container where an encrypted one was expected is refused, or
            // an attacker could substitute plaintext of their choosing.
            None => {
                self.expect_unencrypted("the container")?;
                None
            }
            Some(c) => {
                self.check_kdf_cost(&c.kdf)?;
                let master = self.master(&c.kdf)?;
                let mut keys = FileKeys::derive(c.cipher, &master, &c.file_nonce);
                if !keys.check_matches(&c.key_check) {
                    return Err(Error::wrong_key(
                        "wrong passphrase or key: it does not open this container",
                    ));
                }
                keys.verify_header(Header::mac_input(&raw), &c.mac)?;
                Some(keys)
            }
        };
        Ok(Opened {
            header,
            header_len: raw.len() as u64,
            keys,
        })
    }

    /// A secret means "this should be encrypted": an unencrypted input
    /// (`what`) where an encrypted one was expected is refused, or an
    /// attacker could substitute plaintext of their choosing.
    pub(crate) fn expect_unencrypted(&self, what: &str) -> Result<()> {
        if self.inner.secret.is_some() || !self.inner.age.identities.is_empty() {
            return Err(Error::integrity(format!(
                "{what} is not encrypted, but a passphrase, key or identity was given \
                 (an unencrypted file may have been substituted); \
                 restore it without a key if that is expected"
            )));
        }
        Ok(())
    }

    /// Refuses an Argon2id cost over the reader's limits before any of the
    /// work: the header is not authenticated until the key it derives is.
    fn check_kdf_cost(&self, kdf: &Kdf) -> Result<()> {
        let Kdf::Argon2id { params, .. } = kdf else {
            return Ok(());
        };
        let cfg = &self.inner.config;
        let memory = u64::from(params.m_kib) * 1024;
        if memory > cfg.max_memory as u64 {
            return Err(Error::resource(format!(
                "the container asks for Argon2id with {} MiB of memory, over the limit of {} MiB; \
                 if the file is trusted, raise it (--max-memory, PipelineBuilder::max_memory)",
                memory >> 20,
                cfg.max_memory >> 20
            )));
        }
        if params.t > cfg.max_kdf_passes {
            return Err(Error::resource(format!(
                "the container asks for Argon2id with {} passes, over the limit of {}; \
                 if the file is trusted, raise it (--max-kdf-passes, PipelineBuilder::max_kdf_passes)",
                params.t, cfg.max_kdf_passes
            )));
        }
        Ok(())
    }

    /// The stage chain a container needs: built-ins from the header,
    /// custom stages matched by name against this pipeline's.
    /// The channel depth and the chunks in flight a restore of `header`'s
    /// container may have: its chunk size sets the memory a run may need,
    /// and within the limit large chunks run with fewer in flight.
    pub(crate) fn restore_window_for(&self, header: &Header) -> Result<(usize, usize)> {
        crate::config::restore_window(&self.inner.config, header.chunk_size).ok_or_else(|| {
            Error::resource(format!(
                "the container's chunks of {} MiB need more memory than the limit of {} MiB; \
                 if the file is trusted, raise it (--max-memory, PipelineBuilder::max_memory)",
                header.chunk_size >> 20,
                self.inner.config.max_memory >> 20
            ))
        })
    }

    pub(crate) fn chain_for(&self, header: &Header) -> Result<Vec<ChainStage>> {
        header
            .stages
            .iter()
            .map(|desc| {
                if desc.id == CUSTOM_STAGE_ID {
                    self.inner
                        .chain
                        .iter()
                        .find(|s| s.desc.id == CUSTOM_STAGE_ID && s.desc.name == desc.name)
                        .cloned()
                        .ok_or_else(|| {
                            Error::usage(format!(
                                "the container needs the custom stage {:?}, which this pipeline lacks",
                                desc.name
                            ))
                        })
                } else {
                    let spec = StageSpec::from_id(desc.id, desc.param)?;
                    Ok(ChainStage {
                        stage: spec.build()?,
                        desc: desc.clone(),
                    })
                }
            })
            .collect()
    }
}

/// What decoding each record of `header`'s container takes: its stages
/// `chain`, its checksum and chunk size, and its keys when encrypted.
pub(crate) fn restore_codec<'a>(
    header: &Header,
    chain: &'a [ChainStage],
    keys: Option<&'a FileKeys>,
) -> Codec<'a> {
    Codec {
        chain,
        checksum: header.checksum,
        chunk_size: header.chunk_size,
        keys,
        pieces: None,
    }
}

/// The whole-file digest of what was restored, checked against the
/// trailer's (masked with the file's key when encrypted).
pub(crate) fn check_file_digest(
    header: &Header,
    keys: Option<&FileKeys>,
    hasher: Option<Hasher>,
    trailer: &Trailer,
) -> Result<Option<[u8; 32]>> {
    let digest = hasher.map(|h| h.finalize());
    if let (Some(d), Some(expected), Some(kind)) = (digest, trailer.digest, header.checksum) {
        let stored = keys.map_or(d, |k| k.mask_file_digest(&d));
        if stored != expected {
            return Err(Error::integrity(format!(
                "whole-file {} mismatch (the chunks are intact but do not form the original)",
                kind.name()
            )));
        }
    }
    Ok(digest)
}
