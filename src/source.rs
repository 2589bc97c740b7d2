//! How a named input file is read: `read(2)` into the chunk buffers
//! (buffered, the default) or through a memory map (`--reader mmap`).
//!
//! Both hand the engine a plain `Read`, so nothing downstream changes: the
//! reader thread copies each chunk into a pooled buffer either way (from
//! the kernel's page cache with `read`, from the mapped pages with mmap).
//! What mmap saves is the system call per read; what it costs is a page
//! fault per unmapped page. `benches/compare.sh`'s reader rows measure
//! which wins (`docs/performance.md`).
//!
//! **The caveat of mmap.** If another process truncates the file while it
//! is mapped, touching the vanished pages raises `SIGBUS`, which kills the
//! process at once: no error message, and the temp output file stays
//! behind (it is never renamed, so no partial file appears under the
//! destination name). Reads instead see the file end early, which the
//! pipeline reports as "input changed while it was read". That is why mmap
//! is opt-in. Mapping falls back to reads when it is not possible (pipes,
//! devices, some file systems). A file that grows after it was mapped is
//! read up to its length when opened (reads would see, and report, the
//! change).

use std::fs::File;
#[cfg(feature = "mmap")]
use std::io::Cursor;
use std::io::{self, Read};

#[cfg(feature = "mmap")]
use memmap2::{Advice, Mmap, UncheckedAdvice};

/// How named input files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReaderKind {
    /// `read(2)` into the chunk buffers. The default.
    #[default]
    Buffered,
    /// A read-only memory map, advised sequential (see the module's caveat).
    Mmap,
}

named_enum!(
    ReaderKind,
    "reader",
    [
        ReaderKind::Buffered => "buffered",
        ReaderKind::Mmap => "mmap",
    ]
);

/// An open input: the file itself, or its map. Implements `Read`.
pub enum Source {
    /// Read with `read(2)`.
    File(File),
    /// Read from a memory map (with the `mmap` feature).
    #[cfg(feature = "mmap")]
    Map(MapReader),
}

#[cfg(feature = "mmap")]
/// Reads a map front to back, and gives the pages it has passed back to
/// the kernel every [`MapReader::RELEASE`] bytes: mapped pages that were
/// touched count as resident, so without this the process's RSS would grow
/// to the size of the file (measured: 529 MiB for a 512 MiB input).
pub struct MapReader {
    map: Cursor<Mmap>,
    /// Everything before this offset has been released.
    released: usize,
}

#[cfg(feature = "mmap")]
impl MapReader {
    /// Bytes between releases: large enough that the madvise calls cost
    /// nothing, small enough that the resident part stays near the chunk
    /// buffers' size.
    pub const RELEASE: usize = 8 << 20;
}

#[cfg(feature = "mmap")]
impl Read for MapReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.map.read(buf)?;
        let pos = self.map.position() as usize;
        if pos - self.released >= Self::RELEASE {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only
            // drops this process's page-table entries; the data stays in
            // the page cache and would fault back in on access. The cursor
            // only moves forward, so this range is not read again anyway.
            let _ = unsafe {
                self.map.get_ref().unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    self.released,
                    pos - self.released,
                )
            };
            self.released = pos;
        }
        Ok(n)
    }
}

impl Source {
    /// Opens `file` the way `kind` says; a map that cannot be made falls
    /// back to reading the file.
    pub fn new(file: File, kind: ReaderKind) -> Source {
        // Only a regular file with a size can be mapped: a pipe cannot, and
        // a pseudo-file that reports size 0 (`/proc/cpuinfo`) would map as
        // empty, whatever it holds.
        let mappable = file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0);
        if kind == ReaderKind::Buffered || !mappable {
            return Source::File(file);
        }
        Source::mapped(file)
    }

    /// Without the `mmap` feature the builder refuses `ReaderKind::Mmap`;
    /// a `Source` asked for one directly reads the file.
    #[cfg(not(feature = "mmap"))]
    fn mapped(file: File) -> Source {
        Source::File(file)
    }

    #[cfg(feature = "mmap")]
    fn mapped(file: File) -> Source {
        // SAFETY: the map is read-only and private to this process; the
        // remaining hazard, another process truncating the file, is the
        // documented caveat of the opt-in (`SIGBUS`, see the module docs).
        match unsafe { Mmap::map(&file) } {
            Ok(map) => {
                // Only a hint: read-ahead and early reclaim of passed pages.
                let _ = map.advise(Advice::Sequential);
                Source::Map(MapReader {
                    map: Cursor::new(map),
                    released: 0,
                })
            }
            Err(_) => Source::File(file),
        }
    }

    /// True when the input is mapped.
    pub fn is_mapped(&self) -> bool {
        match self {
            Source::File(_) => false,
            #[cfg(feature = "mmap")]
            Source::Map(_) => true,
        }
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::File(f) => f.read(buf),
            #[cfg(feature = "mmap")]
            Source::Map(m) => m.read(buf),
        }
    }
}

#[cfg(all(test, feature = "mmap"))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn both_kinds_read_the_same_bytes_and_devices_fall_back() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        f.write_all(&data).expect("write");
        for kind in [ReaderKind::Buffered, ReaderKind::Mmap] {
            let mut s = Source::new(File::open(f.path()).expect("open"), kind);
            assert_eq!(s.is_mapped(), kind == ReaderKind::Mmap);
            let mut back = Vec::new();
            s.read_to_end(&mut back).expect("read");
            assert_eq!(back, data, "{kind}");
        }
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let mut s = Source::new(File::open(empty.path()).expect("open"), ReaderKind::Mmap);
        let mut back = Vec::new();
        s.read_to_end(&mut back).expect("read");
        assert!(back.is_empty());
        // A character device cannot be mapped: reads instead.
        let s = Source::new(File::open("/dev/null").expect("open"), ReaderKind::Mmap);
        assert!(!s.is_mapped(), "falls back to reads");
        assert!("floppy".parse::<ReaderKind>().is_err());
        // Past several release points, in odd-sized reads: still every byte.
        let mut big = tempfile::NamedTempFile::new().expect("temp file");
        let data: Vec<u8> = (0..(2 * MapReader::RELEASE + 12_345) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        big.write_all(&data).expect("write");
        let mut s = Source::new(File::open(big.path()).expect("open"), ReaderKind::Mmap);
        assert!(s.is_mapped());
        let (mut back, mut buf) = (Vec::new(), vec![0u8; 1_000_003]);
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        assert!(back == data, "released pages must not change what is read");
        assert_eq!(
            "MMAP".parse::<ReaderKind>().expect("valid"),
            ReaderKind::Mmap
        );
    }
}
