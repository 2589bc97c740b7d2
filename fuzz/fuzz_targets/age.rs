//! An age file opened with the golden identity (`tests/data/`): the
//! header parser, the stanza checks, the MAC and the pieces, through the
//! stream path (sequential) and the file path (laid out, then opened in
//! parallel jobs), with the memory limit at its minimum so that an scrypt
//! stanza can ask for at most 2^14 work. Hostile bytes may only produce
//! errors, never a panic, a hang or a permit kept.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncpipe::{AgeIdentity, Pipeline, Secret};

const IDENTITY: &str = include_str!("../../tests/data/age-golden-identity.txt");

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let id = IDENTITY
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .and_then(|l| AgeIdentity::parse(l).ok())
            .expect("the golden identity");
        Pipeline::builder()
            .threads(2)
            .cpu_tokens(2)
            .channel_depth(1)
            .max_memory(16 << 20)
            .age_identity(id)
            .secret(Secret::passphrase("syncpipe golden passphrase").expect("valid"))
            .build()
            .expect("a valid fixed configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let p = pipeline();
    let _ = p.restore(data, std::io::sink());
    let path = std::env::temp_dir().join(format!("syncpipe-fuzz-age-{}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = p.verify_path(&path);
    }
    assert!(p.governor().all_returned());
});
