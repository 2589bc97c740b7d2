#!/usr/bin/env bash
# small_file.sh: per-file use, as `find -exec` makes it: N separate
# invocations on 4 KiB text files, syncpipe against zstd, in interleaved
# rounds (each round times every row once over all N files, so a slow
# moment of the machine falls on every row alike).
#
# Usage:  benches/small_file.sh [DIR]        (DIR default /tmp/syncpipe-small)
#
# Rows (ms per file = the round's wall clock / N, best and median round):
#   syncpipe   syncpipe process F -o F.spipe -f   (durable: temp file,
#              fsync, rename, fsync of the folder)
#   zstd       zstd -q -f F -o F.zst              (not durable: no fsync)
#   zstd+sync  zstd -q -f F -o F.zst && sync F.zst DIR
#              (durable: fsync of the file and of the folder, but through
#              a second process, whose start-up it pays too)
#   before     (only with BEFORE_BIN) the same as syncpipe, with another
#              binary: an older build, for a before/after in one run
# The goal line compares syncpipe with plain zstd.
#
# Env:
#   N=200        files (and invocations per row per round)
#   ROUNDS=5     interleaved rounds
#   SYNCPIPE_BIN=  use this binary instead of building with cargo
#   BEFORE_BIN=    also time this binary (the "before" row)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/syncpipe-small}
N=${N:-200}
ROUNDS=${ROUNDS:-5}
command -v zstd >/dev/null || { echo "small_file.sh: zstd is required" >&2; exit 2; }
command -v python3 >/dev/null || { echo "small_file.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"

rm -rf "$DIR" && mkdir -p "$DIR"
# Text-like 4 KiB files: words from a small vocabulary, a different order
# in each file.
python3 - "$DIR" "$N" <<'PY'
import random, sys
d, n = sys.argv[1], int(sys.argv[2])
words = "the of and to in is that for it as with was on be by this are from or".split()
for i in range(n):
    r = random.Random(i)
    text = " ".join(r.choice(words) for _ in range(2000)).encode()[:4096]
    open(f"{d}/f{i:05}.txt", "wb").write(text)
PY
cat "$DIR"/*.txt >/dev/null

now_ns() { date +%s%N; }
row_syncpipe() { for f in "$DIR"/*.txt; do "$BIN" process "$f" -o "$f.spipe" -f; done; }
row_before() { for f in "$DIR"/*.txt; do "$BEFORE_BIN" process "$f" -o "$f.spipe" -f; done; }
row_zstd() { for f in "$DIR"/*.txt; do zstd -q -f "$f" -o "$f.zst"; done; }
row_zstd_sync() { for f in "$DIR"/*.txt; do zstd -q -f "$f" -o "$f.zst" && sync "$f.zst" "$DIR"; done; }

declare -A times
rows="syncpipe zstd zstd_sync"
[ -n "${BEFORE_BIN:-}" ] && rows="before $rows"
for r in $(seq "$ROUNDS"); do
  for row in $rows; do
    t0=$(now_ns)
    "row_$row"
    t1=$(now_ns)
    times[$row]+="$(( (t1 - t0) / 1000 )) "
  done
done

echo "small_file.sh: N=$N files of 4 KiB, $ROUNDS interleaved rounds, $(nproc) cores"
python3 - "$N" "${times[syncpipe]}" "${times[zstd]}" "${times[zstd_sync]}" "${times[before]:-}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
rows = {name: [int(u) / 1000 / n for u in s.split()] for name, s in
        zip(["syncpipe", "zstd", "zstd+sync", "before"], sys.argv[2:]) if s}
base = statistics.median(rows["zstd"])
print(f"{'row':<10} {'best ms/file':>13} {'median ms/file':>15} {'× zstd':>7}")
for name, v in rows.items():
    med = statistics.median(v)
    print(f"{name:<10} {min(v):>13.2f} {med:>15.2f} {med / base:>7.2f}")
ratio = statistics.median(rows["syncpipe"]) / base
verdict = "met" if ratio <= 1.5 else "NOT met"
print(f"goal: syncpipe ≤ 1.5× zstd per file: {ratio:.2f}× ({verdict})")
PY
