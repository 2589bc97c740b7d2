//! A custom stage next to a built-in one: here a toy "xor" transform after
//! lz4, written as a type implementing `Stage`. Custom stages are recorded
//! by name in the container; restoring needs a pipeline given the same stage.
//!
//! Run: `cargo run --release --example custom_stage`

use syncpipe::stage::{ChunkInfo, Stage};
use syncpipe::stages::StageSpec;
use syncpipe::{Error, ErrorKind, Pipeline, Result};

/// XORs every byte with a key that depends on the chunk index, so chunks
/// restored out of place would come out wrong.
struct Xor(u8);

impl Stage for Xor {
    fn forward(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let k = self.0 ^ c.index as u8;
        out.extend(input.iter().map(|b| b ^ k));
        Ok(())
    }
    fn inverse(&self, c: &ChunkInfo, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if input.len() > c.limit {
            return Err(Error::integrity("xor: chunk larger than its limit"));
        }
        self.forward(c, input, out)
    }
    fn name(&self) -> String {
        "xor".into()
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let pipeline = Pipeline::builder()
        .stage(StageSpec::Lz4)
        .custom_stage(Xor(0x5a))
        .chunk_size(64 << 10)
        .build()?;
    let data = b"custom stages run on the rayon pool like the built-ins. ".repeat(10_000);
    let mut container = Vec::new();
    let report = pipeline.run(&data[..], &mut container)?;
    println!(
        "{} -> {} bytes through {:?}",
        report.bytes_in,
        report.bytes_out,
        pipeline.stage_names()
    );

    let mut back = Vec::new();
    pipeline.restore(&container[..], &mut back)?;
    assert_eq!(back, data);
    println!("restored with the custom stage: identical");

    // Without the custom stage, restore says what is missing.
    let plain = Pipeline::builder().build()?;
    match plain.restore(&container[..], std::io::sink()) {
        Err(e) if e.kind() == ErrorKind::Usage => println!("without it: {e}"),
        other => return Err(format!("expected a usage error, got {other:?}").into()),
    }
    Ok(())
}
