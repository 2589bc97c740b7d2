//! Bech32 (BIP 173), the text form of age's keys: `age1…` recipients and
//! `AGE-SECRET-KEY-1…` identities. Only the original Bech32 checksum
//! (constant 1), which age uses; Bech32m strings are refused.

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// The human-readable part as the checksum sees it (lower case).
fn hrp_expand(hrp: &[u8]) -> impl Iterator<Item = u8> + '_ {
    hrp.iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|c| c & 31))
}

/// `data` as a Bech32 string under the (lower-case) `hrp`, in lower case.
pub(crate) fn encode(hrp: &str, data: &[u8]) -> String {
    let hrp = hrp.to_ascii_lowercase();
    let mut five = Vec::with_capacity(data.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            five.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        five.push(((acc << (5 - bits)) & 31) as u8);
    }
    let chk = polymod(
        hrp_expand(hrp.as_bytes())
            .chain(five.iter().copied())
            .chain([0u8; 6]),
    ) ^ 1;
    let mut out = hrp;
    out.push('1');
    for v in five
        .iter()
        .copied()
        .chain((0..6).map(|i| ((chk >> (5 * (5 - i))) & 31) as u8))
    {
        out.push(char::from(CHARSET[usize::from(v)]));
    }
    out
}

/// The human-readable part (lower case) and the bytes of the Bech32
/// string `s`, or why it is not one.
pub(crate) fn decode(s: &str) -> Result<(String, Vec<u8>), &'static str> {
    let lower = s.bytes().any(|c| c.is_ascii_lowercase());
    let upper = s.bytes().any(|c| c.is_ascii_uppercase());
    if lower && upper {
        return Err("mixed case");
    }
    if s.bytes().any(|c| !(33..=126).contains(&c)) {
        return Err("a character outside printable ASCII");
    }
    let s = s.to_ascii_lowercase();
    let sep = s.rfind('1').ok_or("no separator")?;
    let (hrp, rest) = (&s[..sep], &s.as_bytes()[sep + 1..]);
    if hrp.is_empty() || rest.len() < 6 {
        return Err("too short");
    }
    let mut five = Vec::with_capacity(rest.len());
    for &c in rest {
        let v = CHARSET
            .iter()
            .position(|&x| x == c)
            .ok_or("a character outside the Bech32 alphabet")?;
        five.push(v as u8);
    }
    if polymod(hrp_expand(hrp.as_bytes()).chain(five.iter().copied())) != 1 {
        return Err("a bad checksum");
    }
    five.truncate(five.len() - 6);
    let mut data = Vec::with_capacity(five.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in five {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            data.push(((acc >> bits) & 0xff) as u8);
        }
    }
    // What is left over is padding: fewer than 5 bits, all zero.
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return Err("bad padding");
    }
    Ok((hrp.to_string(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP 173's own valid strings, and the round trip of a 32-byte key.
    #[test]
    fn reads_the_bip173_vectors_and_round_trips() {
        for s in [
            "A12UEL5L",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        ] {
            assert!(decode(s).is_ok(), "{s}");
        }
        let key = [7u8; 32];
        let text = encode("age", &key);
        assert!(text.starts_with("age1") && text.len() == 62, "{text}");
        assert_eq!(decode(&text), Ok(("age".to_string(), key.to_vec())));
        assert_eq!(
            decode(&text.to_ascii_uppercase()).map(|d| d.1),
            Ok(key.to_vec())
        );
    }

    #[test]
    fn refuses_a_changed_character_and_mixed_case() {
        let text = encode("age", &[1u8; 32]);
        let mut bad = text.clone().into_bytes();
        bad[10] = if bad[10] == b'q' { b'p' } else { b'q' };
        assert_eq!(
            decode(std::str::from_utf8(&bad).expect("ascii")),
            Err("a bad checksum")
        );
        let mixed = format!("AGE{}", &text[3..]);
        assert_eq!(decode(&mixed), Err("mixed case"));
    }
}
