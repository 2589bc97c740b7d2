//! A sequential `Read` of concatenated gzip members, for the inputs whose
//! members cannot be found without inflating (`gzip`'s, `pigz`'s, a pipe).
//!
//! As `gzip -d` does, zero bytes after the last member are padding (tar and
//! tape blocking leave them) and are skipped; any other trailing byte is
//! an error rather than silently ignored, so nothing after the data can be
//! mistaken for part of it.

use std::io::{self, BufRead, Read};

use flate2::bufread::GzDecoder;

/// Where the reader is.
enum State<R> {
    /// Inside a member (boxed: the decoder's state is a few hundred bytes,
    /// the other states a reader).
    Member(Box<GzDecoder<R>>),
    /// After a member: another, padding or the end follows.
    Between(R),
    Done,
}

/// The gzip members of `R`, decoded one after the other; each member's
/// CRC-32 and ISIZE are checked as it ends.
pub struct Members<R: BufRead> {
    state: Option<State<R>>,
}

impl<R: BufRead> Members<R> {
    /// Reads members from `input`, which starts with one.
    pub fn new(input: R) -> Members<R> {
        Members {
            state: Some(State::Member(Box::new(GzDecoder::new(input)))),
        }
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state.take().expect("the state is put back every turn") {
                State::Member(mut d) => {
                    let n = d.read(buf)?;
                    if n > 0 {
                        self.state = Some(State::Member(d));
                        return Ok(n);
                    }
                    // The member's trailer has been read and checked.
                    self.state = Some(State::Between(d.into_inner()));
                }
                State::Between(mut r) => {
                    let next = r.fill_buf()?;
                    match next.first() {
                        None => self.state = Some(State::Done),
                        Some(0) => {
                            skip_zeros(&mut r)?;
                            self.state = Some(State::Done);
                        }
                        Some(_) => self.state = Some(State::Member(Box::new(GzDecoder::new(r)))),
                    }
                }
                State::Done => {
                    self.state = Some(State::Done);
                    return Ok(0);
                }
            }
        }
    }
}

/// Consumes the rest of `r`, which must be zero bytes.
fn skip_zeros(r: &mut impl BufRead) -> io::Result<()> {
    loop {
        let block = r.fill_buf()?;
        if block.is_empty() {
            return Ok(());
        }
        if block.iter().any(|&b| b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes after the last gzip member that are neither a member nor zero padding",
            ));
        }
        let n = block.len();
        r.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn member(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(file: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Members::new(io::BufReader::with_capacity(7, file)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn members_follow_one_another_and_zero_padding_ends_them() {
        let file = [member(b"one, "), member(b""), member(b"two")].concat();
        assert_eq!(decode(&file).unwrap(), b"one, two");
        let padded = [&file[..], &[0u8; 1000]].concat();
        assert_eq!(decode(&padded).unwrap(), b"one, two");
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let file = member(b"some data");
        for bad in [
            [&file[..], b"garbage"].concat(),
            [&file[..], &[0, 0, 1]].concat(),
            file[..file.len() - 1].to_vec(),
        ] {
            assert!(decode(&bad).is_err());
        }
    }
}
