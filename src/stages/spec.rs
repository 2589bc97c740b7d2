//! Stage specs: one built-in transform and its parameter, as named on the
//! command line (`zstd:3`) and as stored in the container header (an id and a
//! parameter). The list grammar (`zstd:3,sha256`) is [`parse_stages`].

use std::fmt;
use std::sync::Arc;

// The list grammar lives in its own file; `spec` is where callers find it.
pub use super::parse::{parse_stages, Stages};
use super::{Brotli, Gzip, Lz4, Passthrough, Zstd};
use crate::error::{Error, Result};
use crate::stage::Stage;

/// A built-in transform stage and its parameter.
///
/// The ids ([`StageSpec::id`]) are stored in container headers and are
/// frozen: zstd 1, lz4 2, gzip 3, brotli 4, passthrough 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageSpec {
    /// zstd at a level (`zstd`, `zstd:N`; default [`Zstd::DEFAULT_LEVEL`]).
    Zstd(i32),
    /// LZ4 (`lz4`).
    Lz4,
    /// Raw deflate at a level (`gzip`, `gzip:N`, `deflate`, `deflate:N`;
    /// default [`Gzip::DEFAULT_LEVEL`]).
    Gzip(u32),
    /// Brotli at a quality (`brotli`, `brotli:N`; default
    /// [`Brotli::DEFAULT_QUALITY`]).
    Brotli(u32),
    /// No transform (`passthrough`).
    Passthrough,
}

impl StageSpec {
    /// The canonical name, as in specs and [`Stage::name`].
    pub fn name(&self) -> &'static str {
        match self {
            StageSpec::Zstd(_) => "zstd",
            StageSpec::Lz4 => "lz4",
            StageSpec::Gzip(_) => "gzip",
            StageSpec::Brotli(_) => "brotli",
            StageSpec::Passthrough => "passthrough",
        }
    }

    /// The frozen header id: zstd 1, lz4 2, gzip 3, brotli 4, passthrough 5.
    pub fn id(&self) -> u8 {
        match self {
            StageSpec::Zstd(_) => 1,
            StageSpec::Lz4 => 2,
            StageSpec::Gzip(_) => 3,
            StageSpec::Brotli(_) => 4,
            StageSpec::Passthrough => 5,
        }
    }

    /// The level or quality stored in the header; 0 for stages without one.
    pub fn param(&self) -> i32 {
        match *self {
            StageSpec::Zstd(level) => level,
            StageSpec::Gzip(level) => level as i32,
            StageSpec::Brotli(quality) => quality as i32,
            StageSpec::Lz4 | StageSpec::Passthrough => 0,
        }
    }

    /// The stage with header id `id` and parameter `param`.
    ///
    /// # Errors
    ///
    /// [`Error::integrity`] for an unknown id, a parameter out of range, or
    /// a non-zero parameter on a stage that takes none (the header is bad).
    pub fn from_id(id: u8, param: i32) -> Result<StageSpec> {
        let unsigned = || {
            u32::try_from(param)
                .map_err(|_| Error::integrity(format!("stage id {id}: bad parameter {param}")))
        };
        let spec = match id {
            1 => StageSpec::Zstd(param),
            2 => StageSpec::Lz4,
            3 => StageSpec::Gzip(unsigned()?),
            4 => StageSpec::Brotli(unsigned()?),
            5 => StageSpec::Passthrough,
            _ => return Err(Error::integrity(format!("unknown stage id {id}"))),
        };
        if spec.param() != param {
            return Err(Error::integrity(format!(
                "stage {} takes no parameter, got {param}",
                spec.name()
            )));
        }
        spec.build()
            .map_err(|e| Error::integrity(format!("bad stage in header: {e}")))?;
        Ok(spec)
    }

    /// The stage this spec describes.
    ///
    /// # Errors
    ///
    /// [`Error::usage`] if the level or quality is out of range (possible
    /// only for a spec built by hand, not for one from [`parse_stages`]).
    pub fn build(&self) -> Result<Arc<dyn Stage>> {
        Ok(match *self {
            StageSpec::Zstd(level) => Arc::new(Zstd::new(level)?),
            StageSpec::Lz4 => Arc::new(Lz4),
            StageSpec::Gzip(level) => Arc::new(Gzip::new(level)?),
            StageSpec::Brotli(quality) => Arc::new(Brotli::new(quality)?),
            StageSpec::Passthrough => Arc::new(Passthrough),
        })
    }
}

impl fmt::Display for StageSpec {
    /// The canonical spec text: `zstd:3`, `lz4`, `gzip:6`, `brotli:5`,
    /// `passthrough`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageSpec::Lz4 | StageSpec::Passthrough => f.write_str(self.name()),
            _ => write!(f, "{}:{}", self.name(), self.param()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn ids_and_params_round_trip() {
        let all = [
            StageSpec::Zstd(3),
            StageSpec::Lz4,
            StageSpec::Gzip(9),
            StageSpec::Brotli(0),
            StageSpec::Passthrough,
        ];
        for (spec, id) in all.iter().zip(1..) {
            assert_eq!(spec.id(), id);
            assert_eq!(StageSpec::from_id(spec.id(), spec.param()).unwrap(), *spec);
            assert_eq!(spec.build().unwrap().name(), spec.name());
            let parsed = parse_stages(&spec.to_string()).unwrap();
            assert_eq!(parsed.transforms.as_slice(), std::slice::from_ref(spec));
        }
    }

    #[test]
    fn hostile_header_values_are_clean_errors() {
        let table = [
            (0, 0),
            (6, 0),
            (9, 0),
            (255, 3),
            (1, 0),
            (1, 20),
            (1, i32::MIN),
        ];
        let more = [(2, 1), (3, -1), (3, 10), (4, 12), (4, i32::MAX), (5, 7)];
        for (id, param) in table.into_iter().chain(more) {
            let err = StageSpec::from_id(id, param).expect_err("hostile header");
            assert_eq!(err.kind(), ErrorKind::Integrity, "{id} {param}");
        }
        assert_eq!(
            StageSpec::from_id(9, 0).unwrap_err().to_string(),
            "unknown stage id 9"
        );
        assert_eq!(
            StageSpec::Zstd(99).build().err().map(|e| e.kind()),
            Some(ErrorKind::Usage)
        );
    }
}
