//! Byte sizes: the one parser every size flag uses (`--chunk-size`,
//! `--max-memory`, `bench --size`) and the one formatter every printed size
//! uses. Exact sizes print as whole units (`64 KiB`, `1 MiB`), which the
//! parser takes back, so a printed chunk size can be pasted into a flag.

/// Binary units, smallest first; a bare number is bytes.
const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];

/// Parses `65536`, `64k`, `256KiB`, `4M`, `1MB`, `2 GiB`, `1TiB`: binary
/// units throughout (as zstd's `--block-size`; `KB` means KiB too), within
/// `min ..= max` bytes. The error names the accepted range.
pub fn parse(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 256KiB, 4MiB, 2GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    n.checked_mul(1 << shift)
        .filter(|b| (min..=max).contains(b))
        .ok_or_else(|| format!("{text:?} is outside {} ..= {}", format(min), format(max)))
}

/// `512 B`, `64 KiB`, `1 MiB`, `1.5 KiB`, `3.7 GiB`: in the largest unit
/// not above the value, a whole number when it divides evenly, else one
/// decimal (a value that rounds up to 1024.0 of a unit is shown in the next).
pub fn format(bytes: u64) -> String {
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >= 1 << (10 * (unit + 1)) {
        unit += 1;
    }
    let scale = 1u64 << (10 * unit);
    if bytes.is_multiple_of(scale) {
        return format!("{} {}", bytes / scale, UNITS[unit]);
    }
    let mut v = bytes as f64 / scale as f64;
    if v >= 1023.95 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_within_the_range() {
        let any = |t| parse(t, 1, u64::MAX);
        assert_eq!(any("65536"), Ok(65536));
        assert_eq!(any("64k"), Ok(64 << 10));
        assert_eq!(any("256KiB"), Ok(256 << 10));
        assert_eq!(any("4M"), Ok(4 << 20));
        assert_eq!(any("1MB"), Ok(1 << 20));
        assert_eq!(any(" 2 GiB "), Ok(2 << 30));
        assert_eq!(any("1tib"), Ok(1 << 40));
        for bad in ["", "abc", "1.5MiB", "4 PiB", "-1", "99999999999TiB"] {
            assert!(any(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("65MiB", 4 << 10, 64 << 20),
            Err("\"65MiB\" is outside 4 KiB ..= 64 MiB".to_owned())
        );
        assert!(parse("0", 1, 10).is_err());
    }

    #[test]
    fn formats_exactly_when_it_can() {
        assert_eq!(format(0), "0 B");
        assert_eq!(format(512), "512 B");
        assert_eq!(format(1000), "1000 B");
        assert_eq!(format(1536), "1.5 KiB");
        assert_eq!(format(64 << 10), "64 KiB");
        assert_eq!(format(1 << 20), "1 MiB");
        assert_eq!(format(3 << 19), "1.5 MiB");
        assert_eq!(format(1 << 40), "1 TiB");
        assert_eq!(format(5 << 40), "5 TiB");
        assert_eq!(format((1 << 20) - 1), "1.0 MiB");
    }

    #[test]
    fn what_is_printed_parses_back() {
        for n in [1u64, 4096, 64 << 10, 1 << 20, 384 << 10, 1 << 30, 1 << 40] {
            assert_eq!(parse(&format(n), 1, u64::MAX), Ok(n), "{n}");
        }
    }
}
