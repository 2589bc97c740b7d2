//! The `.zst` stream bodies (see `crate::zst` for the format): processing
//! writes one frame per chunk and the seek table; restoring decodes the
//! frames of a laid-out file in parallel, or any `.zst` input in one
//! sequential stream. Same threads, channels and permits as a container's
//! run: only the job and the framing differ.

use std::io::{self, Read, Write};
use std::time::Instant;

use super::reader::{self, Feed};
use super::writer::Sink;
use super::{Counting, Weight};
use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::format::read_full;
use crate::pipeline::Pipeline;
use crate::report::Report;
use crate::stages::StageSpec;
use crate::tuner::Tuner;
use crate::zst::frame;
use crate::zst::seek_table::{Entry, SeekTable};
use crate::zst::{Layout, Span};

/// Bytes decoded per read of a sequential decode, and written per write.
const SEQUENTIAL_BLOCK: usize = 256 << 10;
/// Largest window a sequential decode accepts: 2^27 = 128 MiB, the limit
/// `zstd -d` itself has without `--long`/`--memory`.
const WINDOW_LOG_MAX: u32 = 27;

/// A compressed frame on its way to the writer.
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
    /// The level of the pipeline's one zstd stage (the builder refuses the
    /// zst format for any other stage list).
    fn zst_level(&self) -> i32 {
        self.inner
            .chain
            .first()
            .and_then(|s| StageSpec::from_id(s.desc.id, s.desc.param).ok())
            .and_then(|spec| match spec {
                StageSpec::Zstd(level) => Some(level),
                _ => None,
            })
            .expect("the builder allows the zst format with one zstd stage only")
    }

    pub(crate) fn process_zst<R: Read + Send, W: Write + Send>(
        &self,
        input: R,
        output: W,
        original_len: Option<u64>,
    ) -> Result<(W, Report)> {
        let start = Instant::now();
        let cfg = &self.inner.config;
        let level = self.zst_level();
        let plan = self.chunk_plan(original_len);
        let mut sink = Sink::new(output);
        let cpu = self.cpu()?;
        let _active = self.begin_run();
        let window = (cfg.channel_depth, cfg.cpu_tokens);
        let state = self.new_state(plan.start, window, &[], None, None);
        let mut table = SeekTable::default();
        let result = {
            let (sink, state, table) = (&mut sink, &state, &mut table);
            let tuner = plan.tuner.as_ref();
            let next_size = || tuner.map_or(plan.start, Tuner::next_size);
            super::run(
                state,
                cpu,
                cfg.channel_depth,
                |tx: &Feed<'_, Chunk>| reader::read_chunks(state, input, next_size, None, tx),
                |_, c| {
                    let started = Instant::now();
                    let mut bytes = state.buffers.take();
                    frame::compress(&c.data, level, &mut bytes)?;
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
                    // its frame (zstd's bound adds under 1%).
                    table.entries.push(Entry {
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
        sink.write_all(&table.encode()?)?;
        let (output, bytes_out) = sink.finish(&state)?;
        let report = self.processed(&state, start, &plan, &summary, bytes_out);
        self.run_done(&report)?;
        Ok((output, report))
    }

    /// Restores the frames `spans` (a file's layout, in order) read from
    /// `input`, decoding them in parallel.
    pub(crate) fn restore_zst_frames<R: Read + Send, W: Write + Send>(
        &self,
        spans: &[Span],
        input: R,
        output: W,
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
                            return Err(Error::integrity(
                                "the zst file ends before the frames its layout lists",
                            ));
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
                    frame::decompress(&coded.bytes, coded.content, &mut data)
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

    /// Restores any `.zst` input (frames of any size, skippable frames, a
    /// seek table) in one sequential decode on the calling thread, under
    /// one CPU permit; memory is bounded by zstd's window limit.
    pub(crate) fn restore_zst_sequential<R: Read, W: Write>(
        &self,
        input: R,
        output: W,
    ) -> Result<(W, Report)> {
        self.expect_unencrypted("the zst input")?;
        let start = Instant::now();
        let governor = self.governor();
        let cancel = self.cancel_token();
        let _active = self.begin_run();
        let _cpu = governor.cpu.acquire(cancel)?;
        let mut source = Watched {
            inner: Counting {
                inner: input,
                bytes: 0,
            },
            failed: None,
        };
        let mut out = Counting {
            inner: output,
            bytes: 0,
        };
        let decoded = (|| -> Result<()> {
            let mut decoder = zstd::stream::read::Decoder::new(&mut source)
                .map_err(|e| Error::stage(format!("cannot create a zstd decoder: {e}")))?;
            decoder
                .window_log_max(WINDOW_LOG_MAX)
                .map_err(|e| Error::stage(format!("cannot set the zstd window limit: {e}")))?;
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
                        return Err(match decoder.get_mut().get_mut().failed.take() {
                            Some(io) => Error::io(io),
                            None => {
                                Error::integrity(format!("corrupt or truncated zstd data: {e}"))
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

/// The input of a sequential decode: remembers its own failure, so that
/// an I/O error is not reported as corrupt data.
struct Watched<R> {
    inner: Counting<R>,
    failed: Option<io::Error>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

impl Pipeline {
    /// Lays out the regular `.zst` file `file` of `len` bytes before any
    /// output exists: its frames, when each one's size is known and the
    /// largest fits the restore window, else [`Layout::Sequential`]. A seek
    /// table that does not describe the file is refused here.
    pub(crate) fn zst_layout(&self, file: &std::fs::File, len: u64) -> Result<Layout> {
        self.expect_unencrypted("the zst file")?;
        let cfg = &self.inner.config;
        Ok(
            match crate::zst::layout(file, len, crate::format::MAX_CHUNK_SIZE as u64)? {
                Layout::Frames(spans) if fits(cfg, &spans) => Layout::Frames(spans),
                _ => Layout::Sequential,
            },
        )
    }

    /// Restores a laid-out `.zst` file (read from its start) into `output`.
    pub(crate) fn restore_zst_file<W: Write + Send>(
        &self,
        layout: &Layout,
        file: std::fs::File,
        output: W,
    ) -> Result<(W, Report)> {
        let source = crate::source::Source::new(file, self.inner.config.reader);
        match layout {
            Layout::Frames(spans) => self.restore_zst_frames(spans, source, output),
            Layout::Sequential => self.restore_zst_sequential(source, output),
        }
    }
}

/// Whether frames of these sizes fit the memory limit's restore window.
fn fits(cfg: &crate::config::Config, spans: &[Span]) -> bool {
    let largest = spans.iter().map(|s| s.content).max().unwrap_or(0) as usize;
    crate::config::restore_window(cfg, largest.max(1)).is_some()
}
