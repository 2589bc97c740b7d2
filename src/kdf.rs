//! Argon2id: from a passphrase to the 32-byte master key.
//!
//! The parameters and the salt travel in the container header, so a reader
//! must bound them *before* doing any work: a hostile header asking for
//! 1 TiB of memory is refused, not attempted (see [`KdfParams::check`]).

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Bytes of salt stored in the header.
pub const SALT_LEN: usize = 16;

/// Argon2id cost parameters (RFC 9106 names: `m` KiB of memory, `t` passes,
/// `p` lanes).
///
/// The default, m = 64 MiB, t = 3, p = 4, is the second recommended option
/// of RFC 9106 §4 ("if much less memory is available"): about 0.1 s of one
/// core and 64 MiB per derivation on the development machine (see
/// `docs/performance.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over the memory.
    pub t: u32,
    /// Lanes (parallelism the hash is defined with; this build computes the
    /// lanes one after another).
    pub p: u32,
}

impl KdfParams {
    /// Largest memory accepted from a header or a flag: 1 GiB. A reader
    /// refuses anything larger before allocating.
    pub const MAX_M_KIB: u32 = 1 << 20;
    /// Largest number of passes accepted.
    pub const MAX_T: u32 = 64;
    /// Largest number of lanes accepted.
    pub const MAX_P: u32 = 16;

    /// Checks the parameters against the RFC minimums and this build's caps.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] naming the field and the allowed range.
    pub fn check(&self) -> Result<()> {
        if self.p == 0 || self.p > Self::MAX_P {
            return Err(Error::usage(format!(
                "argon2 lanes p={} is outside 1..={}",
                self.p,
                Self::MAX_P
            )));
        }
        if self.t == 0 || self.t > Self::MAX_T {
            return Err(Error::usage(format!(
                "argon2 passes t={} is outside 1..={}",
                self.t,
                Self::MAX_T
            )));
        }
        // RFC 9106: at least 8 KiB per lane.
        let min_m = 8 * self.p;
        if self.m_kib < min_m || self.m_kib > Self::MAX_M_KIB {
            return Err(Error::usage(format!(
                "argon2 memory m={} KiB is outside {min_m}..={} (8 KiB per lane up to 1 GiB)",
                self.m_kib,
                Self::MAX_M_KIB
            )));
        }
        Ok(())
    }

    /// Derives the 32-byte master key from `passphrase` and `salt`.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] for parameters outside [`KdfParams::check`]; an
    /// I/O-kind error if the memory cannot be had.
    pub fn derive(&self, passphrase: &[u8], salt: &[u8; SALT_LEN]) -> Result<Zeroizing<[u8; 32]>> {
        self.check()?;
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| Error::usage(format!("argon2 parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; 32]);
        // The matrix is allocated here, fallibly: memory that cannot be had
        // (a container's m under `ulimit -v`) is this file's error, where
        // the crate's own allocation would abort the process.
        let blocks = argon.params().block_count();
        let mut memory: Vec<argon2::Block> = Vec::new();
        memory.try_reserve_exact(blocks).map_err(|_| {
            Error::resource(format!(
                "cannot allocate the {} MiB of memory Argon2id asks for",
                self.m_kib / 1024
            ))
        })?;
        memory.resize(blocks, argon2::Block::default());
        argon
            .hash_password_into_with_memory(passphrase, salt, &mut key[..], &mut memory)
            .map_err(|e| Error::usage(format!("argon2: {e}")))?;
        Ok(key)
    }
}

impl Default for KdfParams {
    fn default() -> KdfParams {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 4,
        }
    }
}

impl fmt::Display for KdfParams {
    /// `m=65536,t=3,p=4`, the form [`KdfParams::from_str`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},t={},p={}", self.m_kib, self.t, self.p)
    }
}

impl FromStr for KdfParams {
    type Err = Error;

    /// Parses `m=KiB,t=N,p=N`; any subset, the rest from the default.
    fn from_str(text: &str) -> Result<KdfParams> {
        let mut p = KdfParams::default();
        for item in text.split(',').map(str::trim) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                Error::usage(format!(
                    "bad argon2 parameter '{item}': expected m=KiB, t=N or p=N"
                ))
            })?;
            let value: u32 = value.trim().parse().map_err(|_| {
                Error::usage(format!("bad argon2 parameter '{item}': not a number"))
            })?;
            match key.trim() {
                "m" => p.m_kib = value,
                "t" => p.t = value,
                "p" => p.p = value,
                other => {
                    return Err(Error::usage(format!(
                        "unknown argon2 parameter '{other}': expected m, t or p"
                    )))
                }
            }
        }
        p.check()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        assert_eq!(
            "t=1, m=64".parse::<KdfParams>().expect("valid"),
            KdfParams {
                m_kib: 64,
                t: 1,
                p: 4
            }
        );
        for bad in ["m=1,p=1", "t=0", "p=17", "m=2000000", "x=1", "m", "t=abc"] {
            assert!(bad.parse::<KdfParams>().is_err(), "{bad}");
        }
        assert_eq!(KdfParams::default().to_string(), "m=65536,t=3,p=4");
    }

    #[test]
    fn hostile_parameters_are_refused_before_work() {
        let huge = KdfParams {
            m_kib: u32::MAX,
            t: 1,
            p: 1,
        };
        let e = huge
            .derive(b"pw", &[0; SALT_LEN])
            .expect_err("over the cap");
        assert!(e.to_string().contains("outside"), "{e}");
    }
}
