//! A whole container, restored to a sink through the library and inspected:
//! hostile bytes may only produce errors, never a panic, a hang or an
//! allocation past the format's bounds (libFuzzer's -rss_limit_mb catches
//! those).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncpipe::Pipeline;

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::builder()
            .threads(1)
            .cpu_tokens(1)
            .channel_depth(1)
            .build()
            .expect("a valid fixed configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let restored = pipeline().restore(data, std::io::sink());
    let inspected = syncpipe::inspect(data);
    // inspect walks the same records as restore (format::Walker), so a
    // container restore accepts must also inspect cleanly.
    if restored.is_ok() {
        assert!(inspected.is_ok(), "restore accepted what inspect refused");
    }
});
