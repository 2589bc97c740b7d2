//! Encryption through the library: known-answer vectors for every primitive
//! the container relies on, round trips, nonce uniqueness, and the
//! key-related refusals. The tamper matrix through the CLI is in
//! `cli/tests/crypto_cli.rs`.

use std::collections::HashSet;

use crate::common::{mixed_data, watchdog};
use syncpipe::cipher::{chunk_nonce, hkdf_sha256, ChunkCipher, CipherKind};
use syncpipe::format::{Header, Item, Walker};
use syncpipe::stages::{ChecksumKind, StageSpec};
use syncpipe::Overwrite;
use syncpipe::{ErrorKind, KdfParams, Pipeline, Secret};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn key32(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32-byte key")
}

fn nonce12(s: &str) -> [u8; 12] {
    unhex(s).try_into().expect("12-byte nonce")
}

/// Seals with the vector's inputs, compares with its output, and opens it
/// back; a flipped tag bit must not open.
fn aead_vector(kind: CipherKind, key: &str, nonce: &str, aad: &str, plain: &[u8], sealed: &str) {
    let c = ChunkCipher::new(kind, &key32(key));
    let (nonce, aad) = (nonce12(nonce), unhex(aad));
    let mut buf = plain.to_vec();
    c.seal(nonce, &aad, &mut buf).expect("seal");
    assert_eq!(buf, unhex(sealed), "{kind} ciphertext || tag");
    let mut opened = buf.clone();
    c.open(nonce, &aad, &mut opened).expect("open");
    assert_eq!(opened, plain);
    let last = buf.len() - 1;
    buf[last] ^= 1;
    assert!(c.open(nonce, &aad, &mut buf).is_err(), "{kind}: forged tag");
    assert!(buf.is_empty(), "no plaintext is left after a failed open");
}

#[test]
fn kat_aes_256_gcm() {
    // McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13,
    // 14 and 16 (the 256-bit key cases).
    let zero_key = "00".repeat(32);
    let zero_iv = "00".repeat(12);
    aead_vector(
        CipherKind::Aes256Gcm,
        &zero_key,
        &zero_iv,
        "",
        b"",
        "530f8afbc74536b9a963b4f1c4cb738b",
    );
    aead_vector(
        CipherKind::Aes256Gcm,
        &zero_key,
        &zero_iv,
        "",
        &[0u8; 16],
        "cea7403d4d606b6e074ec5d3baf39d18 d0d1c8a799996bf0265b98b5d48ab919",
    );
    aead_vector(
        CipherKind::Aes256Gcm,
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        &unhex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        ),
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
         8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
         76fc6ece0f4e1768cddf8853bb2d551b",
    );
}

#[test]
fn kat_chacha20_poly1305_rfc8439() {
    // RFC 8439 section 2.8.2.
    aead_vector(
        CipherKind::ChaCha20Poly1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        "50515253c0c1c2c3c4c5c6c7",
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for \
          the future, sunscreen would be it.",
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116
         1ae10b594f09e26a7e902ecbd0600691",
    );
}

#[test]
fn kat_argon2id_rfc9106() {
    // RFC 9106 section 5.3: Argon2id, m = 32 KiB, t = 3, p = 4, with a
    // secret and associated data. The container's KDF uses neither, so the
    // vector is checked on the argon2 crate with the same algorithm, version
    // and parameters, and our derive() is checked against the crate below.
    let params = argon2::ParamsBuilder::new()
        .m_cost(32)
        .t_cost(3)
        .p_cost(4)
        .output_len(32)
        .data(argon2::AssociatedData::new(&[4u8; 12]).expect("12 bytes of AD"))
        .build()
        .expect("valid parameters");
    let argon = argon2::Argon2::new_with_secret(
        &[3u8; 8],
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    )
    .expect("valid secret");
    let mut tag = [0u8; 32];
    argon
        .hash_password_into(&[1u8; 32], &[2u8; 16], &mut tag)
        .expect("hash");
    assert_eq!(
        tag.to_vec(),
        unhex("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
    );

    // Without secret and AD, KdfParams::derive is exactly Argon2id v1.3.
    let ours = KdfParams {
        m_kib: 32,
        t: 3,
        p: 4,
    }
    .derive(&[1u8; 32], &[2u8; 16])
    .expect("derive");
    let mut plain = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(32, 3, 4, Some(32)).expect("valid"),
    )
    .hash_password_into(&[1u8; 32], &[2u8; 16], &mut plain)
    .expect("hash");
    assert_eq!(*ours, plain);
    assert_ne!(plain, tag, "the secret and AD change the tag");
}

#[test]
fn kat_hkdf_sha256_rfc5869() {
    // RFC 5869 test case 1.
    let mut okm = [0u8; 42];
    hkdf_sha256(
        &unhex("000102030405060708090a0b0c"),
        &[0x0b; 22],
        &unhex("f0f1f2f3f4f5f6f7f8f9"),
        &mut okm,
    );
    assert_eq!(
        okm.to_vec(),
        unhex(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf
             34007208d5b887185865"
        )
    );
}

#[test]
fn kat_sha256_and_blake3() {
    // FIPS 180-2 appendix B.1 ("abc"), and BLAKE3's test_vectors.json
    // (input lengths 0 and 1).
    let sha = ChecksumKind::Sha256;
    let abc = unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(sha.digest(b"abc").to_vec(), abc);
    let mut h = sha.hasher();
    h.update(b"a");
    h.update(b"bc");
    assert_eq!(h.finalize().to_vec(), abc, "incremental = one shot");
    let b3 = ChecksumKind::Blake3;
    assert_eq!(
        b3.digest(b"").to_vec(),
        unhex("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
    );
    assert_eq!(
        b3.digest(&[0]).to_vec(),
        unhex("2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213")
    );
}

/// A cheap KDF so the suite does not spend seconds in Argon2id.
fn fast_kdf() -> KdfParams {
    KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    }
}

fn pass(p: &str) -> Secret {
    Secret::passphrase(p).expect("valid passphrase")
}

fn encrypting(
    cipher: CipherKind,
    compress: Option<StageSpec>,
    threads: usize,
    secret: Secret,
) -> Pipeline {
    let mut b = Pipeline::builder()
        .threads(threads)
        .chunk_size(16 << 10)
        .checksum(Some(ChecksumKind::Sha256))
        .cipher(Some(cipher))
        .kdf(fast_kdf())
        .secret(secret);
    if let Some(spec) = compress {
        b = b.stage(spec);
    } else {
        b = b.stage(StageSpec::Passthrough);
    }
    b.build().expect("valid pipeline")
}

fn restorer(secret: Secret) -> Pipeline {
    Pipeline::builder()
        .threads(2)
        .secret(secret)
        .build()
        .expect("valid pipeline")
}

#[test]
fn round_trips_for_both_ciphers_compression_and_thread_counts() {
    watchdog(120, || {
        let data = mixed_data(200_000, 11);
        for cipher in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
            for compress in [None, Some(StageSpec::Zstd(3)), Some(StageSpec::Lz4)] {
                for threads in [1, 2, 4] {
                    let p = encrypting(cipher, compress.clone(), threads, pass("pw"));
                    let mut c = Vec::new();
                    let report = p.run(&data[..], &mut c).expect("process");
                    assert_eq!(report.chunks, 13);
                    let h = Header::read_from(&mut &c[..]).expect("header");
                    assert_eq!(h.crypto.as_ref().map(|c| c.cipher), Some(cipher));
                    // A fresh pipeline (no cached keys) with the same secret.
                    let mut back = Vec::new();
                    let r = restorer(pass("pw"))
                        .restore(&c[..], &mut back)
                        .unwrap_or_else(|e| panic!("{cipher} {compress:?} T{threads}: {e}"));
                    assert_eq!(back, data, "{cipher} {compress:?} T{threads}");
                    // The report carries the real digest, not the keyed one.
                    assert_eq!(r.digest, Some(ChecksumKind::Sha256.digest(&data)));
                }
            }
        }
    });
}

#[test]
fn empty_input_and_raw_key_round_trip() {
    let key = Secret::key(&[9u8; 32]).expect("32 bytes");
    for data in [Vec::new(), mixed_data(16 << 10, 3), mixed_data(50_000, 4)] {
        let p = encrypting(CipherKind::ChaCha20Poly1305, None, 2, key.clone());
        let mut c = Vec::new();
        p.run(&data[..], &mut c).expect("process");
        let mut back = Vec::new();
        restorer(key.clone())
            .restore(&c[..], &mut back)
            .expect("restore");
        assert_eq!(back, data);
    }
}

#[test]
fn the_same_input_encrypts_to_different_bytes() {
    let data = mixed_data(40_000, 5);
    let p = encrypting(
        CipherKind::Aes256Gcm,
        Some(StageSpec::Zstd(3)),
        2,
        pass("pw"),
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    p.run(&data[..], &mut a).expect("first");
    p.run(&data[..], &mut b).expect("second");
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b, "same pipeline: a fresh file nonce per file");
    let mut c = Vec::new();
    encrypting(
        CipherKind::Aes256Gcm,
        Some(StageSpec::Zstd(3)),
        2,
        pass("pw"),
    )
    .run(&data[..], &mut c)
    .expect("third");
    assert_ne!(a, c, "another pipeline: another salt too");
    // Not a single 16-byte block of record payload (ciphertext and tags) in
    // common between the two files.
    let blocks = |v: &[u8]| -> HashSet<Vec<u8>> {
        let mut r = v;
        let header = Header::read_from(&mut r).expect("header");
        let mut walker = Walker::new(&header);
        let (mut payload, mut set) = (Vec::new(), HashSet::new());
        while let Item::Chunk { .. } = walker.next(&mut r, &mut payload).expect("record") {
            set.extend(payload.chunks_exact(16).map(<[u8]>::to_vec));
        }
        set
    };
    let (ba, bb) = (blocks(&a), blocks(&b));
    assert!(ba.len() > 100);
    assert!(ba.is_disjoint(&bb));
}

#[test]
fn chunk_nonces_never_repeat_inside_a_file() {
    let data = mixed_data(1 << 20, 6);
    let p = encrypting(CipherKind::Aes256Gcm, Some(StageSpec::Lz4), 4, pass("pw"));
    let mut c = Vec::new();
    p.run(&data[..], &mut c).expect("process");
    let mut r = &c[..];
    let header = Header::read_from(&mut r).expect("header");
    let mut walker = Walker::new(&header);
    let mut payload = Vec::new();
    let mut nonces = HashSet::new();
    let mut chunks = 0;
    while let Item::Chunk { head, .. } = walker.next(&mut r, &mut payload).expect("record") {
        chunks += 1;
        assert!(
            nonces.insert(chunk_nonce(head.index, head.is_last())),
            "nonce of chunk {} repeats",
            head.index
        );
    }
    assert_eq!(chunks, 64);
    assert_eq!(nonces.len(), 64);
}

#[test]
fn wrong_secrets_are_told_from_the_header() {
    let data = mixed_data(60_000, 7);
    let mut c = Vec::new();
    encrypting(CipherKind::Aes256Gcm, None, 2, pass("right"))
        .run(&data[..], &mut c)
        .expect("process");
    let cases = [
        (
            Some(pass("wrong")),
            ErrorKind::WrongKey,
            "wrong passphrase or key",
        ),
        (
            Some(Secret::key(&[0u8; 32]).expect("key")),
            ErrorKind::WrongKey,
            "encrypted with a passphrase, not a key file",
        ),
        (None, ErrorKind::Usage, "the container is encrypted"),
    ];
    for (secret, kind, message) in cases {
        let mut b = Pipeline::builder();
        if let Some(s) = secret {
            b = b.secret(s);
        }
        let mut out = Vec::new();
        let e = b
            .build()
            .expect("valid")
            .restore(&c[..], &mut out)
            .expect_err("must be refused");
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(message), "{e}");
        assert!(out.is_empty(), "nothing is written for a refused key");
    }
}

#[test]
fn an_altered_header_fails_authentication_with_the_right_key() {
    let data = mixed_data(60_000, 8);
    let mut c = Vec::new();
    encrypting(CipherKind::ChaCha20Poly1305, None, 2, pass("pw"))
        .run(&data[..], &mut c)
        .expect("process");
    // Change the mode field (body offset 14, header offset 28) and fix the
    // header CRC, as an attacker would.
    let header_len = 18 + u32::from_le_bytes(c[10..14].try_into().expect("4 bytes")) as usize;
    c[28] ^= 0o7;
    let crc = crc32fast::hash(&c[..header_len - 4]);
    c[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
    let e = restorer(pass("pw"))
        .restore(&c[..], Vec::new())
        .expect_err("altered header");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(
        e.to_string().contains("header authentication failed"),
        "{e}"
    );
}

#[test]
fn a_cipher_without_a_secret_is_refused_at_build() {
    let e = Pipeline::builder()
        .cipher(Some(CipherKind::Aes256Gcm))
        .build()
        .expect_err("no secret");
    assert_eq!(e.kind(), ErrorKind::Usage);
    assert!(e.to_string().contains("needs a passphrase or key"), "{e}");
}

#[test]
fn the_kdf_runs_once_per_pipeline_for_a_batch() {
    // Default Argon2id cost: if every file paid for it, 6 files would cost
    // 6 derivations; the salt is drawn once per pipeline, so restore of all
    // six with one pipeline must also hit its cache. Checked through the
    // salt: all six headers carry the same one.
    let p = Pipeline::builder()
        .cipher(Some(CipherKind::Aes256Gcm))
        .secret(pass("pw"))
        .kdf(fast_kdf())
        .build()
        .expect("valid");
    let salts: HashSet<_> = (0..6)
        .map(|i| {
            let mut c = Vec::new();
            p.run(&mixed_data(1000, i)[..], &mut c).expect("process");
            let h = Header::read_from(&mut &c[..]).expect("header");
            let crypto = h.crypto.expect("encrypted");
            assert!(matches!(crypto.kdf, syncpipe::format::Kdf::Argon2id { .. }));
            (format!("{:?}", crypto.kdf), crypto.file_nonce)
        })
        .collect();
    let kdfs: HashSet<_> = salts.iter().map(|(k, _)| k.clone()).collect();
    let nonces: HashSet<_> = salts.iter().map(|(_, n)| *n).collect();
    assert_eq!(kdfs.len(), 1, "one salt for the pipeline");
    assert_eq!(nonces.len(), 6, "one file nonce per file");
}

#[test]
fn a_pipeline_with_a_secret_refuses_an_unencrypted_container() {
    // Substitution: plaintext where ciphertext was expected.
    let mut c = Vec::new();
    Pipeline::builder()
        .build()
        .expect("valid")
        .run(&b"attacker's data"[..], &mut c)
        .expect("process");
    let mut out = Vec::new();
    let e = restorer(pass("pw"))
        .restore(&c[..], &mut out)
        .expect_err("must be refused");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("not encrypted"), "{e}");
    assert!(out.is_empty());
}

#[test]
fn restore_to_path_checks_the_key_before_creating_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = Vec::new();
    encrypting(CipherKind::Aes256Gcm, None, 2, pass("right"))
        .run(&mixed_data(30_000, 9)[..], &mut c)
        .expect("process");
    let target = dir.path().join("out.bin");
    let e = restorer(pass("wrong"))
        .restore_to_path(&c[..], &target, Overwrite::Refuse)
        .expect_err("wrong key");
    assert_eq!(e.kind(), ErrorKind::WrongKey);
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    restorer(pass("right"))
        .restore_to_path(&c[..], &target, Overwrite::Refuse)
        .expect("right key");
    assert_eq!(std::fs::read(&target).expect("read"), mixed_data(30_000, 9));
}
