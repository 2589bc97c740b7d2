//! The AEAD backend choice, by measurement: `cargo bench --bench aead`.
//!
//! Seals one 1 MiB chunk in place (the engine's default chunk, the exact
//! call pattern of `syncpipe::cipher::ChunkCipher`: key schedule made once,
//! fresh nonce and a 32-byte AAD per chunk) with
//! - `ring` 0.17 (what syncpipe uses), through `ChunkCipher` itself;
//! - RustCrypto's `aes-gcm` 0.10 and `chacha20poly1305` 0.10 (dev-only);
//!
//! for AES-256-GCM and ChaCha20-Poly1305, one thread. Plus SHA-256 (sha2,
//! ring) and BLAKE3 over the same buffer, the other per-chunk costs of an
//! encrypted pipeline. Result table and the decision: `docs/performance.md`.

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::KeyInit;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use syncpipe::cipher::{chunk_nonce, ChunkCipher, CipherKind};
use syncpipe::stages::ChecksumKind;

const LEN: usize = 1 << 20;

fn benches(c: &mut Criterion) {
    let data: Vec<u8> = (0..LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let key = [7u8; 32];
    let aad = [1u8; 32];
    let mut buf = Vec::with_capacity(LEN + 16);

    let mut g = c.benchmark_group("aead-1MiB");
    g.throughput(Throughput::Bytes(LEN as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
        let ring = ChunkCipher::new(kind, &key);
        let mut i = 0u64;
        g.bench_function(format!("ring/{kind}"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(&data);
                i += 1;
                ring.seal(chunk_nonce(i, false), &aad, &mut buf)
                    .expect("seal");
                black_box(&buf);
            })
        });
    }

    let aes = aes_gcm::Aes256Gcm::new(&key.into());
    let mut i = 0u64;
    g.bench_function("rustcrypto/aes-256-gcm", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&data);
            i += 1;
            aes.encrypt_in_place(&chunk_nonce(i, false).into(), &aad, &mut buf)
                .expect("seal");
            black_box(&buf);
        })
    });
    let chacha = chacha20poly1305::ChaCha20Poly1305::new(&key.into());
    g.bench_function("rustcrypto/chacha20-poly1305", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&data);
            i += 1;
            chacha
                .encrypt_in_place(&chunk_nonce(i, false).into(), &aad, &mut buf)
                .expect("seal");
            black_box(&buf);
        })
    });
    // The copy into the buffer alone, to subtract from the rows above.
    g.bench_function("copy-only", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&data);
            black_box(&buf);
        })
    });
    for kind in [ChecksumKind::Sha256, ChecksumKind::Blake3] {
        g.bench_function(format!("checksum/{}", kind.name()), |b| {
            b.iter(|| black_box(kind.digest(&data)))
        });
    }
    g.bench_function("checksum/ring-sha256", |b| {
        b.iter(|| black_box(ring::digest::digest(&ring::digest::SHA256, &data)))
    });
    g.finish();
}

criterion_group!(aead, benches);
criterion_main!(aead);
