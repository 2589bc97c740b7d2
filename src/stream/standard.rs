//! The bodies of the standard formats (`.zst`, `.gz`, BGZF; see `crate::zst`
//! and `crate::gz` for the formats): processing writes each chunk as
//! independent units (a zstd frame, gzip members) and the format's tail;
//! restoring decodes the units of a laid-out file in parallel, or any input
//! of the format in one sequential stream. Same threads, channels and
//! permits as a container's run: only the job and the framing differ.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::time::Instant;

use super::reader::{self, Feed};
use super::writer::Sink;
use super::{Counting, Weight};
use crate::age::payload::{PayloadKey, PIECE};
use crate::age::writer::Sealer;
use crate::age::Sealing;
use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::file_format::Format;
use crate::format::read_full;
use crate::gz::member::{self, BGZF_BLOCK, BGZF_EOF};
use crate::gz::members::Members;
use crate::layout::{file_reader, Layout, Span};
use crate::pipeline::Pipeline;
use crate::report::Report;
use crate::stages::StageSpec;
use crate::tuner::Tuner;
use crate::zst::frame;
use crate::zst::seek_table::{Entry, SeekTable};

/// Bytes decoded per read of a sequential decode, and written per write.
const SEQUENTIAL_BLOCK: usize = 256 << 10;
/// Largest window a sequential decode accepts: 2^27 = 128 MiB, the limit
/// `zstd -d` itself has without `--long`/`--memory`.
const WINDOW_LOG_MAX: u32 = 27;

/// What a standard format writes for each chunk: at the level of its one
/// compression stage, or an age file's sealed pieces.
#[derive(Clone, Copy)]
enum Codec<'a> {
    Zst(i32),
    Gz(u32),
    Bgzf(u32),
    /// Age pieces under the key, each chunk `pieces` of them (the last
    /// chunk aside): chunk `i` starts at piece `i × pieces`.
    Age(&'a PayloadKey, u64),
}

impl Codec<'_> {
    fn encode(self, index: u64, chunk: &Chunk, out: &mut Vec<u8>) -> Result<()> {
        let data = &chunk.data;
        match self {
            Codec::Zst(level) => frame::compress(data, level, out),
            Codec::Gz(level) => member::encode_gz(level, data, out),
            Codec::Bgzf(level) => member::encode_bgzf(level, data, out),
            Codec::Age(key, pieces) => key.seal(index * pieces, chunk.last, data, out),
        }
    }

    /// A chunk size the format's units divide: BGZF blocks hold 65,280
    /// input bytes, age pieces 64 KiB, so chunks are whole ones (the last
    /// chunk aside).
    fn align(self, size: usize) -> usize {
        let unit = match self {
            Codec::Bgzf(_) => BGZF_BLOCK,
            Codec::Age(..) => PIECE,
            _ => 1,
        };
        (size / unit).max(1) * unit
    }

    /// What follows the last unit: zstd's seek table (one entry per frame
    /// written), BGZF's end-of-file block, or, for an empty `.gz`, one
    /// empty member (a file of no members is not a `.gz` to `gzip -d`).
    fn tail(self, units: &[Entry]) -> Result<Vec<u8>> {
        match self {
            Codec::Zst(_) => SeekTable {
                entries: units.to_vec(),
            }
            .encode(),
            Codec::Gz(level) if units.is_empty() => {
                let mut out = Vec::new();
                member::encode_gz(level, &[], &mut out)?;
                Ok(out)
            }
            Codec::Gz(_) | Codec::Age(..) => Ok(Vec::new()),
            Codec::Bgzf(_) => Ok(BGZF_EOF.to_vec()),
        }
    }
}

/// Decodes unit `index` of a laid-out file, which must hold exactly
/// `expected` bytes: a zstd frame, gzip members, or age pieces.
pub(crate) type Decode<'a> = dyn Fn(u64, &[u8], usize, &mut Vec<u8>) -> Result<()> + Sync + 'a;

/// The decoder of a laid-out `.zst` or `.gz` file's units.
fn decoder(format: Format) -> Box<Decode<'static>> {
    match format {
        Format::Zst => Box::new(|_, unit, expected, out| frame::decompress(unit, expected, out)),
        _ => Box::new(|_, unit, expected, out| member::decode(unit, expected, out)),
    }
}

/// A compressed unit on its way to the writer.
struct Frame {
    bytes: Vec<u8>,
    original_len: usize,
}

impl Weight for Frame {
    fn weight(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// A frame read from a laid-out file, with the size it must decode to.
struct Coded {
    bytes: Vec<u8>,
    content: usize,
}

/// A decoded frame, and whether it was data (not a skippable frame).
struct Decoded {
    data: Vec<u8>,
    counts: bool,
}

impl Weight for Decoded {
    fn weight(&self) -> u64 {
        self.data.len() as u64
    }
}

impl Weight for (Coded, bool) {
    fn weight(&self) -> u64 {
        self.0.bytes.len() as u64
    }
}

impl Pipeline {
    /// The codec of the pipeline's format, at its one stage's level (the
    /// builder refuses a standard format for any other stage list); an age
    /// file's stage, if any, is the `.zst` or `.gz` it encrypts.
    fn unit_codec<'a>(&self, age: Option<&'a Sealing>, start: usize) -> Codec<'a> {
        let stage = self
            .inner
            .chain
            .first()
            .and_then(|s| StageSpec::from_id(s.desc.id, s.desc.param).ok());
        match (self.inner.config.format, stage, age) {
            // Chunks of `start` cut to whole pieces, as `Codec::align` cuts them.
            (_, None, Some(sealing)) => Codec::Age(&sealing.key, (start / PIECE).max(1) as u64),
            (Format::Zst | Format::Age, Some(StageSpec::Zstd(level)), _) => Codec::Zst(level),
            (Format::Gz | Format::Age, Some(StageSpec::Gzip(level)), _) => Codec::Gz(level),
            (Format::Bgzf, Some(StageSpec::Gzip(level)), _) => Codec::Bgzf(level),
            _ => unreachable!("the builder allows a standard format with its own one stage only"),
        }
    }

    /// Processes into a standard format. An age file is sealed by the
    /// workers, piece by piece, when it holds the input itself; when it
    /// holds a `.zst` or `.gz`, its frames are sealed in order as the
    /// writer writes them (they have no 64 KiB boundaries of their own).
    pub(crate) fn process_standard<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
        original_len: Option<u64>,
    ) -> Result<(W, Report)> {
        let (output, report) = match self.inner.config.format {
            Format::Age if !self.inner.chain.is_empty() => {
                let sealing = self.age_sealing()?;
                let wrote = |e| Error::io(e).with_stage("writing the output");
                let counted = Counting {
                    inner: output,
                    bytes: 0,
                };
                let sealer = Sealer::new(counted, &sealing.head, sealing.key).map_err(wrote)?;
                let (sealer, mut report) = self.process_units(input, sealer, original_len, None)?;
                let counted = sealer.finish().map_err(wrote)?;
                report.bytes_out = counted.bytes;
                (counted.inner, report)
            }
            Format::Age => {
                let sealing = self.age_sealing()?;
                self.process_units(input, output, original_len, Some(&sealing))?
            }
            _ => self.process_units(input, output, original_len, None)?,
        };
        self.run_done(&report)?;
        Ok((output, report))
    }

    fn process_units<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
        original_len: Option<u64>,
        age: Option<&Sealing>,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let plan = self.chunk_plan(original_len);
        // Age chunks are fixed (the builder refuses hill climbing for
        // age): chunk `i`'s first piece is `i × pieces`.
        let codec = self.unit_codec(age, plan.start);
        let mut sink = Sink::new(output);
        if let Some(sealing) = age {
            sink.write_all(&sealing.head)?;
        }
        let cpu = self.cpu()?;
        let _active = self.begin_run();
        let window = (cfg.channel_depth, cfg.cpu_tokens);
        let state = self.new_state(plan.start, window, &[], None, None);
        let mut units = Vec::new();
        let result = {
            let (sink, state, units) = (&mut sink, &state, &mut units);
            let tuner = plan.tuner.as_ref();
            let next_size = || codec.align(tuner.map_or(plan.start, Tuner::next_size));
            super::run(
                state,
                cpu,
                cfg.channel_depth,
                |tx: &Feed<'_, Chunk>| reader::read_chunks(state, input, next_size, None, tx),
                |index, c| {
                    let started = Instant::now();
                    let mut bytes = state.buffers.take();
                    codec.encode(index, &c, &mut bytes)?;
                    let original_len = c.data.len();
                    state.buffers.give(c.data);
                    if let Some(t) = tuner {
                        t.record(original_len, started.elapsed());
                    }
                    Ok(Frame {
                        bytes,
                        original_len,
                    })
                },
                |f| {
                    // Both fit in u32: a chunk is at most 64 MiB, and so is
                    // its coding (the formats' bounds add under 1%).
                    units.push(Entry {
                        compressed: f.bytes.len() as u32,
                        decompressed: f.original_len as u32,
                    });
                    let started = Instant::now();
                    sink.write_raw(state, &f.bytes)?;
                    state.release(f.original_len);
                    state.buffers.give(f.bytes);
                    if let Some(t) = tuner {
                        t.record_write(f.original_len, started.elapsed());
                    }
                    Ok(())
                },
            )
        };
        self.settle(&state);
        let summary = result?;
        sink.write_all(&codec.tail(&units)?)?;
        let (output, bytes_out) = sink.finish(&state)?;
        let report = self.processed(&state, start, &plan, &summary, bytes_out);
        Ok((output, report))
    }

    /// Restores the units `spans` (a `format` file's layout, in order) read
    /// from `input`, decoding them in parallel with `decode`.
    pub(crate) fn restore_units<R: Read + Send, W: Write + Send>(
        &self,
        format: Format,
        spans: &[Span],
        input: R,
        output: W,
        decode: &Decode<'_>,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let largest = spans.iter().map(|s| s.content).max().unwrap_or(0) as usize;
        let (depth, in_flight) = crate::config::restore_window(cfg, largest.max(1))
            .expect("the layout keeps frames within the restore window");
        let cpu = self.cpu()?;
        let _active = self.begin_run();
        let mut state = self.new_state(largest, (depth, in_flight), &[], None, None);
        state.in_flight = in_flight;
        let mut sink = Sink::new(output);
        let mut frames = 0u64;
        let result = {
            let (sink, state, frames) = (&mut sink, &state, &mut frames);
            super::run(
                state,
                cpu,
                depth,
                |tx: &Feed<'_, (Coded, bool)>| {
                    let mut input = input;
                    for span in spans {
                        state.check()?;
                        let mut bytes = state.buffers.take();
                        crate::pool::reserve(&mut bytes, span.len as usize)?;
                        bytes.resize(span.len as usize, 0);
                        let n = {
                            let _io = state.io()?;
                            read_full(&mut input, &mut bytes)?
                        };
                        if n < bytes.len() {
                            return Err(Error::integrity(format!(
                                "the {format} file ends before the units its layout lists"
                            )));
                        }
                        state.hold(span.content as usize);
                        let content = span.content as usize;
                        tx.send((Coded { bytes, content }, !span.skippable))
                            .map_err(|()| Error::cancelled())?;
                    }
                    Ok(())
                },
                |index, (coded, counts): (Coded, bool)| {
                    let mut data = state.buffers.take();
                    decode(index, &coded.bytes, coded.content, &mut data)
                        .map_err(|e| e.with_chunk(index))?;
                    state.buffers.give(coded.bytes);
                    Ok(Decoded { data, counts })
                },
                |d: Decoded| {
                    *frames += u64::from(d.counts);
                    sink.write_plain(state, d.data, None)
                },
            )
        };
        self.settle(&state);
        result?;
        let (output, bytes_out) = sink.finish(&state)?;
        let mut report = self.report(&state, start);
        report.bytes_in = spans.iter().map(|s| s.len).sum();
        report.bytes_out = bytes_out;
        report.original_bytes = bytes_out;
        report.chunks = frames;
        report.chunk_size = largest;
        self.run_done(&report)?;
        Ok((output, report))
    }

    /// Restores any input of `format` in one sequential decode on the
    /// calling thread, under one CPU permit: for `.zst`, frames of any
    /// size, skippable frames, a seek table, with memory bounded by zstd's
    /// window limit; for `.gz`, any members (`gzip`'s, `pigz`'s), with
    /// deflate's 32 KiB window.
    pub(crate) fn restore_sequential<R: Read, W: Write>(
        &self,
        format: Format,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        self.restore_sequential_from(format, None, input, output)
    }

    /// [`Pipeline::restore_sequential`], or, with `opened` (the key of an
    /// age file and the bytes of its header and nonce, already read), of
    /// an age payload read from `input`.
    pub(crate) fn restore_sequential_from<R: Read, W: Write>(
        &self,
        format: Format,
        opened: Option<(PayloadKey, u64)>,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        if format != Format::Age {
            self.expect_unencrypted(&format!("the {format} input"))?;
        }
        let start = Instant::now();
        let governor = self.governor();
        let cancel = self.cancel_token();
        let _active = self.begin_run();
        let _cpu = governor.cpu.acquire(cancel)?;
        let failed = RefCell::new(None);
        let (key, head_len) = match opened {
            Some((key, len)) => (Some(key), len),
            None => (None, 0),
        };
        let mut source = Watched {
            inner: Counting {
                inner: input,
                bytes: head_len,
            },
            failed: &failed,
        };
        let mut out = Counting {
            inner: output,
            bytes: 0,
        };
        let codec = format.codec().unwrap_or(format.name());
        let decoded = (|| -> Result<()> {
            let mut decoder: Box<dyn Read + '_> = match (format, key) {
                (Format::Age, key) => {
                    let (opener, inner) = self.age_opener(&mut source, key)?;
                    match inner {
                        Some(f) => sequential_decoder(f, opener)?,
                        None => Box::new(opener),
                    }
                }
                (f, _) => sequential_decoder(f, &mut source)?,
            };
            let mut buf = vec![0u8; SEQUENTIAL_BLOCK];
            loop {
                if cancel.is_cancelled() {
                    return Err(Error::cancelled());
                }
                let n = match decoder.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A failure of the input itself is an I/O error; anything
                    // else the decoder reports is about the data. (Write
                    // errors below keep their own kind: a closed stdout
                    // pipe is a broken pipe, not corrupt data.)
                    Err(e) => {
                        return Err(match failed.borrow_mut().take() {
                            Some(io) => Error::io(io),
                            None => {
                                Error::integrity(format!("corrupt or truncated {codec} data: {e}"))
                            }
                        })
                    }
                };
                if n == 0 {
                    return Ok(());
                }
                let _io = governor.io.acquire(cancel)?;
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io(e).with_stage("writing the output"))?;
            }
        })();
        decoded?;
        {
            let _io = governor.io.acquire(cancel)?;
            out.flush()
                .map_err(|e| Error::io(e).with_stage("writing the output"))?;
        }
        let report = Report {
            elapsed: start.elapsed(),
            bytes_in: source.inner.bytes,
            bytes_out: out.bytes,
            original_bytes: out.bytes,
            cpu_waits: governor.cpu.wait_stats(),
            ..Report::default()
        };
        self.run_done(&report)?;
        Ok((out.inner, report))
    }
}

/// The sequential decoder of a `.zst` or `.gz` read from `input`: for
/// `.zst`, frames of any size, skippable frames, a seek table, with memory
/// bounded by zstd's window limit; for `.gz`, any members (`gzip`'s,
/// `pigz`'s), with deflate's 32 KiB window.
fn sequential_decoder<'a>(format: Format, input: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    Ok(match format {
        Format::Zst => {
            let mut d = zstd::stream::read::Decoder::new(input)
                .map_err(|e| Error::stage(format!("cannot create a zstd decoder: {e}")))?;
            d.window_log_max(WINDOW_LOG_MAX)
                .map_err(|e| Error::stage(format!("cannot set the zstd window limit: {e}")))?;
            Box::new(d)
        }
        _ => Box::new(Members::new(io::BufReader::with_capacity(
            SEQUENTIAL_BLOCK,
            input,
        ))),
    })
}

/// The input of a sequential decode: remembers its own failure, so that
/// an I/O error is not reported as corrupt data.
struct Watched<'a, R> {
    inner: Counting<R>,
    failed: &'a RefCell<Option<io::Error>>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                *self.failed.borrow_mut() = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

impl Pipeline {
    /// Lays out the regular `format` file `file` of `len` bytes before any
    /// output exists: its units, when each one's size is known and the
    /// largest fits the restore window, else [`Layout::Sequential`]. A
    /// zstd seek table or a gzip size field that does not describe the
    /// file is refused here.
    pub(crate) fn standard_layout(
        &self,
        format: Format,
        file: &std::fs::File,
        len: u64,
    ) -> Result<Layout> {
        if format == Format::Age {
            return self.age_layout(file, len);
        }
        self.expect_unencrypted(&format!("the {format} file"))?;
        let cfg = &self.inner.config;
        let limit = crate::format::MAX_CHUNK_SIZE as u64;
        let read_at = &mut file_reader(file);
        let layout = match format {
            Format::Zst => crate::zst::layout_at(read_at, len, limit)?,
            _ => crate::gz::layout_at(read_at, len, limit)?,
        };
        Ok(match layout {
            Layout::Frames(spans) if fits(cfg, &spans) => Layout::Frames(spans),
            _ => Layout::Sequential,
        })
    }

    /// Restores a laid-out `format` file (read from its start) into
    /// `output`.
    pub(crate) fn restore_standard_file<W: Write + Send>(
        &self,
        format: Format,
        layout: &Layout,
        file: std::fs::File,
        output: W,
    ) -> Result<(W, Report)> {
        if let Layout::Age(age) = layout {
            return self.restore_age_file(age, &file, output);
        }
        let source = crate::source::Source::new(file, self.inner.config.reader);
        match layout {
            Layout::Frames(spans) => {
                self.restore_units(format, spans, source, output, &*decoder(format))
            }
            _ => self.restore_sequential(format, source, output),
        }
    }
}

/// Whether frames of these sizes fit the memory limit's restore window.
fn fits(cfg: &crate::config::Config, spans: &[Span]) -> bool {
    let largest = spans.iter().map(|s| s.content).max().unwrap_or(0) as usize;
    crate::config::restore_window(cfg, largest.max(1)).is_some()
}
