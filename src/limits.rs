//! The bounds and defaults of every setting, for a program that takes them
//! from its users (the CLI checks its flags against these, so a value the
//! builder would refuse is refused at parsing, naming the range).

pub use crate::config::{
    DEFAULT_CHANNEL_DEPTH, DEFAULT_CHUNK_SIZE, DEFAULT_IO_TOKENS, DEFAULT_MAX_KDF_PASSES,
    DEFAULT_MAX_MEMORY, DEFAULT_STAGES, MAX_CHANNEL_DEPTH, MAX_FILES_IN_FLIGHT, MAX_THREADS,
    MAX_TOKENS, MIN_MAX_MEMORY,
};
pub use crate::format::MAX_CHUNK_SIZE;
pub use crate::secret::{KEY_LEN, MAX_PASSPHRASE_LEN};
