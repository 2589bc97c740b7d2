#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), after seeding the
# corpora from the golden containers. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`) and a C++ compiler (g++ is enough:
# libfuzzer-sys builds libFuzzer with the cc crate). cargo-fuzz passes
# nightly-only rustc flags (-Z sanitizer, sancov passes); RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Findings land in fuzz/artifacts/TARGET/; the per-target summary
# (executions, exec/s, coverage) is the last lines of fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(container header encrypted_container zst gz age)
fi
export RUSTC_BOOTSTRAP=1
./seed.sh
mkdir -p logs
cargo fuzz build
status=0
for t in "${targets[@]}"; do
    echo "== $t: ${secs}s"
    # -rss_limit_mb: a restore is bounded by a few chunk buffers; 512 MiB
    # leaves room for ASan's shadow memory while still catching a bomb.
    # -timeout: one input taking over 10 s is a hang.
    if ! cargo fuzz run "$t" -- \
        -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 \
        -print_final_stats=1 >"logs/$t.log" 2>&1; then
        echo "!! $t found a failure: see fuzz/logs/$t.log and fuzz/artifacts/$t/"
        status=1
    fi
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|^#[0-9]+.*DONE' "logs/$t.log" || true
done
exit $status
