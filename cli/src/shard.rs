//! `--shard I/N`: which files of a batch belong to one of N independent runs.
//!
//! A file belongs to shard `I` of `N` when the FNV-1a 64-bit hash of its
//! relative path's bytes, modulo `N`, equals `I`. The hash is specified
//! here (and in `docs/scaling-out.md`) so that other tools can reproduce
//! the split, and it is fixed forever: it depends on neither the platform,
//! the Rust version nor the order in which files are found.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use syncpipe::Error;

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over `bytes`: for each byte, xor it in, then multiply by the
/// prime (wrapping).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// One shard of a batch split `count` ways: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This run's shard, `0..count`.
    pub index: u64,
    /// How many shards the batch is split into (at least 1).
    pub count: u64,
}

impl Shard {
    /// True if the file at `rel` (its path relative to the input it was
    /// found under, as the output name is built from) belongs to this shard.
    /// The hash is over the path's raw bytes (Unix `OsStr` bytes), with `/`
    /// as the separator.
    pub fn contains(&self, rel: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        fnv1a64(rel.as_os_str().as_bytes()) % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// Parses `I/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard, Error> {
        let bad = || {
            Error::usage(format!(
                "--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_partition() {
        let shards: Vec<Shard> = (0..5).map(|i| Shard { index: i, count: 5 }).collect();
        for k in 0..1000 {
            let p = format!("dir{}/file{k}.txt", k % 7);
            let n = shards.iter().filter(|s| s.contains(Path::new(&p))).count();
            assert_eq!(n, 1, "{p} in exactly one shard");
        }
    }

    #[test]
    fn parse() {
        assert_eq!(
            "1/4".parse::<Shard>().ok(),
            Some(Shard { index: 1, count: 4 })
        );
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
