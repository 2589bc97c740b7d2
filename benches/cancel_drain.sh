#!/usr/bin/env bash
# cancel_drain.sh [INPUT] [BIN]: how long a run takes to end after SIGINT
# (signal -> exit), per codec and level, with default settings (1 MiB
# chunks, one CPU token per core).
#
# The target: <= 1 s on a 1 GiB input at brotli:9. Each row starts
# a real `syncpipe process`, lets it run WARMUP seconds so that every CPU
# token holds a chunk mid-compression, sends SIGINT, and times the exit.
# It also checks the exit code (130) and that nothing was left behind
# (no output, no temp file). REPS runs per row; the table shows each.
#
# INPUT defaults to a 1 GiB mixed.bin made by make_mixed.py (cached in
# $TMPDIR); BIN to target/release/syncpipe, else target/debug/syncpipe
# (the codecs are optimised in both: Cargo.toml builds dependencies at
# opt-level 2 in dev).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tmp=${TMPDIR:-/tmp}
input=${1:-$tmp/syncpipe-cancel-1g.bin}
bin=${2:-}
if [ -z "$bin" ]; then
    if [ -x "$root/target/release/syncpipe" ]; then
        bin=$root/target/release/syncpipe
    else
        bin=$root/target/debug/syncpipe
    fi
fi
warmup=${WARMUP:-2}
reps=${REPS:-3}
specs=${SPECS:-"brotli:9 zstd:19 brotli:11"}

[ -f "$input" ] || python3 "$here/make_mixed.py" $((1 << 30)) "$input"

work=$(mktemp -d "$tmp/cancel-drain.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }

printf '%-10s | %-6s | %-5s | %-18s | %s\n' "stages" "run" "exit" "signal -> exit (s)" "left behind"
printf '%-10s-|-%-6s-|-%-5s-|-%-18s-|-%s\n' "----------" "------" "-----" "------------------" "-----------"
for spec in $specs; do
    for rep in $(seq 1 "$reps"); do
        out=$work/out.spipe
        "$bin" process "$input" -o "$out" -s "$spec" -q &
        pid=$!
        sleep "$warmup"
        t0=$(now)
        kill -INT "$pid"
        code=0
        wait "$pid" || code=$?
        t1=$(now)
        left=$(ls -A "$work" | tr '\n' ' ')
        printf '%-10s | %-6s | %-5s | %-18s | %s\n' "$spec" "$rep" "$code" \
            "$(echo "$t1 - $t0" | bc -l | xargs printf '%.3f')" "${left:-nothing}"
        rm -f "$work"/* "$work"/.[!.]* 2>/dev/null || true
    done
done
