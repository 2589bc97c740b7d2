//! The keys of a pipeline: the master keys it derived (cached by KDF input,
//! so a batch pays for Argon2id once per salt), the KDF input it writes
//! under, and the sealing of a new header. The container's key schedule is
//! described in `docs/format.md`.

use zeroize::Zeroizing;

use crate::cipher::{self, FileKeys, FILE_NONCE_LEN};
use crate::error::{Error, Result};
use crate::format::{Crypto, Header, Kdf};
use crate::pipeline::Pipeline;
use crate::secret::Secret;

/// Most master keys kept by one pipeline; older ones are dropped (zeroized).
const MAX_CACHED_MASTERS: usize = 8;

impl Pipeline {
    /// Fills in the encryption section of a header about to be written
    /// (when this pipeline has a cipher) and returns the file's keys.
    pub(crate) fn seal_header(&self, header: &mut Header) -> Result<Option<FileKeys>> {
        let Some(cipher) = self.inner.config.cipher else {
            return Ok(None);
        };
        let kdf = self.write_kdf()?;
        let master = self.master(&kdf)?;
        let mut file_nonce = [0u8; FILE_NONCE_LEN];
        cipher::random_bytes(&mut file_nonce)?;
        let mut keys = FileKeys::derive(cipher, &master, &file_nonce);
        header.crypto = Some(Crypto {
            cipher,
            kdf,
            file_nonce,
            key_check: keys.key_check(),
            mac: [0; cipher::CHECK_LEN],
        });
        let mac = keys.sign_header(Header::mac_input(&header.encode()));
        if let Some(c) = header.crypto.as_mut() {
            c.mac = mac;
        }
        Ok(Some(keys))
    }

    /// The KDF input of the containers this pipeline writes: a raw key, or
    /// Argon2id with the configured parameters and a salt drawn once.
    fn write_kdf(&self) -> Result<Kdf> {
        let mut slot = self.inner.write_kdf.lock();
        if let Some(kdf) = *slot {
            return Ok(kdf);
        }
        let secret = self.secret()?;
        let kdf = if secret.is_passphrase() {
            let mut salt = [0u8; crate::kdf::SALT_LEN];
            cipher::random_bytes(&mut salt)?;
            Kdf::Argon2id {
                params: self.inner.config.kdf,
                salt,
            }
        } else {
            Kdf::RawKey
        };
        *slot = Some(kdf);
        Ok(kdf)
    }

    /// The master key for `kdf`, derived from this pipeline's secret (or
    /// taken from the cache).
    pub(crate) fn master(&self, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>> {
        let secret = self.secret()?;
        // The lock is held across the derivation on purpose: two runs that
        // need the same master wait for one Argon2id instead of doing two,
        // and at most one 64 MiB Argon2id matrix is alive per pipeline.
        let mut cache = self.inner.masters.lock();
        if let Some((_, m)) = cache.iter().find(|(k, _)| k == kdf) {
            return Ok(m.clone());
        }
        let master = match kdf {
            Kdf::RawKey => Zeroizing::new(*secret.key_bytes().ok_or_else(|| {
                Error::wrong_key("this container was encrypted with a key file, not a passphrase")
            })?),
            Kdf::Argon2id { params, salt } => {
                let pass = secret.passphrase_bytes().ok_or_else(|| {
                    Error::wrong_key(
                        "this container was encrypted with a passphrase, not a key file",
                    )
                })?;
                params.derive(pass, salt)?
            }
        };
        if cache.len() == MAX_CACHED_MASTERS {
            cache.remove(0);
        }
        cache.push((*kdf, master.clone()));
        Ok(master)
    }

    fn secret(&self) -> Result<&Secret> {
        self.inner.secret.as_ref().ok_or_else(|| {
            Error::usage(
                "the container is encrypted: a passphrase or key is needed \
                 (PipelineBuilder::secret)",
            )
        })
    }
}
