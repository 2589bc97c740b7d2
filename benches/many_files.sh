#!/usr/bin/env bash
# many_files.sh: the batch benchmark. Files per second on many small
# files (one output per file, and one container through tar), and the
# small files' P95 completion time with --scheduler simple vs fair when a
# large file is in the batch.
#
# Usage:  benches/many_files.sh [DIR]        (DIR default /tmp/syncpipe-many)
#
# Rows (page cache warm: each input tree is read once before the rows; one
# timed run per row, wall clock; files/s = input files / seconds):
#   syncpipe process -r small --output-dir OUT                (one container per file)
#   syncpipe process -r small --output-dir OUT --batch-small
#   zstd -3 -r -q small --output-dir-mirror OUT               (one .zst per file)
#   tar cf - small | syncpipe process - -o small.tar.spipe    (one container)
#   tar cf - small | zstd -3 -T2 -q -o small.tar.zst
#   mixed: MIX_LARGE_COUNT large files (sorted first) + MIX_SMALL files of
#     10 MiB, processed with --scheduler simple and fair, with the default
#     files in flight and with 4; -v gives each file's completion time since
#     the start of the batch; P50/P95 over the 10 MiB files.
# syncpipe runs with its defaults (zstd:3,blake3, 1 MiB chunks, one CPU token
# per core); every syncpipe output is fsynced and renamed (zstd's are not).
#
# Env:
#   FILES=20000        small files, 1..16 KiB each (text-like with random runs)
#   MIX_LARGE_MB=256   size of the large file of the mixed case (reference case: 1024)
#   MIX_SMALL=30       10 MiB files of the mixed case (reference case: 100; 0 skips it)
#   MIX_LARGE_COUNT=1  large files in the mixed case
#   SYNCPIPE_BIN=      use this binary instead of building with cargo
# The defaults finish in about 3 minutes on 2 cores.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/tmp/syncpipe-many}
FILES=${FILES:-20000}
MIX_LARGE_MB=${MIX_LARGE_MB:-256}
MIX_SMALL=${MIX_SMALL:-30}
MIX_LARGE_COUNT=${MIX_LARGE_COUNT:-1}
say() { echo "$*" >&2; }
command -v python3 >/dev/null || { say "many_files.sh: python3 is required"; exit 2; }

. "$ROOT/benches/binary.sh"

mkdir -p "$DIR"
cd "$DIR"
rm -rf out out[0-9]*

# ---------------------------------------------------------------- inputs
if [ ! -f "small.done-$FILES" ]; then
  say "generating $FILES small files in $DIR/small"
  rm -rf small small.done-*
  python3 - "$FILES" <<'PY'
import os, random, sys
n = int(sys.argv[1])
rng = random.Random(5)
words = [b"stream ", b"chunk ", b"governor ", b"permit ", b"rayon ", b"channel ", b"\n", b"0123 "]
for i in range(n):
    d = os.path.join("small", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    size = rng.randint(1024, 16384)
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.25:
            out += rng.randbytes(rng.randint(16, 512))
        else:
            out += b"".join(rng.choice(words) for _ in range(rng.randint(1, 64)))
    with open(os.path.join(d, "f%06d.txt" % i), "wb") as f:
        f.write(out[:size])
PY
  touch "small.done-$FILES"
fi
MIXKEY="mix.done-$MIX_LARGE_MB-$MIX_SMALL-$MIX_LARGE_COUNT"
if [ ! -f "$MIXKEY" ]; then
  say "generating the mixed case in $DIR/mix"
  rm -rf mix mix.done-* && mkdir -p mix
  # 10 MiB of text-like data with random runs, the seed of every file.
  python3 - <<'PY'
import random
rng = random.Random(7)
words = [b"stream ", b"chunk ", b"governor ", b"permit ", b"rayon ", b"channel ", b"\n", b"0123 "]
out = bytearray()
while len(out) < 10 << 20:
    if rng.random() < 0.25:
        out += rng.randbytes(rng.randint(16, 4096))
    else:
        out += b"".join(rng.choice(words) for _ in range(rng.randint(1, 256)))
open("mix-seed.bin", "wb").write(out[: 10 << 20])
PY
  for j in $(seq 1 "$MIX_LARGE_COUNT"); do
    # The seed repeated, cut at MIX_LARGE_MB MiB (python: a `| head -c`
    # would end the script through pipefail).
    python3 - "mix/a-large-$j.bin" "$MIX_LARGE_MB" <<'PY'
import sys
seed = open("mix-seed.bin", "rb").read()
left = int(sys.argv[2]) << 20
with open(sys.argv[1], "wb") as f:
    while left > 0:
        f.write(seed[:left])
        left -= len(seed)
PY
  done
  for i in $(seq -w 1 "$MIX_SMALL"); do cp mix-seed.bin "mix/b-small-$i.bin"; done
  touch "$MIXKEY"
fi

# ---------------------------------------------------------------- rows
now() { python3 -c 'import time; print(time.monotonic())'; }
row() { # row NAME FILES SECONDS
  python3 -c "import sys; n, f, s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]); print(f'| {n} | {f} | {s:.2f} | {f/s:,.0f} |')" "$@"
}
# Every row writes into a fresh folder and nothing is deleted until the
# end: on ext4 without a journal (this VM) creating files right after
# deleting thousands costs far more (the allocator skips inodes freed in
# the last minute), which would penalise whichever row follows a delete.
ROW=0
timed() { # timed NAME FILES CMD...
  local name=$1 files=$2; shift 2
  ROW=$((ROW + 1))
  mkdir -p "out$ROW" && rm -f out && ln -s "out$ROW" out
  sync
  local t0 t1; t0=$(now); "$@"; t1=$(now)
  row "$name" "$files" "$(python3 -c "print($t1 - $t0)")"
}

tar cf /dev/null small mix   # warm the page cache
say "running (machine: $(nproc) cores)"
echo "| command | files | seconds | files/s |"
echo "|---|---|---|---|"
timed "syncpipe process -r small --output-dir out" "$FILES" \
  "$BIN" process -q -r small --output-dir out
timed "syncpipe process -r small --output-dir out --batch-small" "$FILES" \
  "$BIN" process -q -r small --output-dir out --batch-small
if zstd -H 2>&1 | grep -q -- --output-dir-mirror; then
  timed "zstd -3 -r -q small --output-dir-mirror out" "$FILES" \
    zstd -3 -r -q small --output-dir-mirror out
else
  say "(this zstd has no --output-dir-mirror: the zstd -r row is skipped)"
fi
timed "tar cf - small | syncpipe process - -o out/small.tar.spipe" "$FILES" \
  sh -c "tar cf - small | '$BIN' process -q - -o out/small.tar.spipe"
timed "tar cf - small | zstd -3 -T2 -q -o out/small.tar.zst" "$FILES" \
  sh -c "tar cf - small | zstd -3 -T2 -q -o out/small.tar.zst"

echo
if [ "$MIX_SMALL" -lt 1 ]; then
  echo "mixed case skipped (MIX_SMALL=0)"
  exit 0
fi
echo "mixed: $MIX_LARGE_COUNT × $MIX_LARGE_MB MiB (found first) + $MIX_SMALL × 10 MiB"
echo
echo "| scheduler | files in flight | batch s | 10 MiB files P50 s | P95 s | last large file done s |"
echo "|---|---|---|---|---|---|"
# Default files in flight (12 on 2 cores), then 4 (= the large files of
# MIX_LARGE_COUNT=4: where FIFO lets large files take every slot).
for slots in 0 4; do
for sched in simple fair; do
  ROW=$((ROW + 1))
  mkdir -p "out$ROW" && rm -f out && ln -s "out$ROW" out
  sync
  t0=$(now)
  "$BIN" process -v -r mix --output-dir out --scheduler "$sched" --files-in-flight "$slots" 2> mix-$sched.log
  t1=$(now)
  python3 - "$sched" "$(python3 -c "print($t1 - $t0)")" mix-$sched.log "$slots" <<'PY'
import re, sys
sched, total, log, slots = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
slots = "default" if slots == "0" else slots
small, large = [], []
for line in open(log):
    m = re.search(r"^mix/(\S+) -> .* done at ([0-9.]+)s", line)
    if m:
        (large if m.group(1).startswith("a-large") else small).append(float(m.group(2)))
small.sort()
pct = lambda p: small[min(len(small) - 1, max(0, -(-len(small) * p // 100) - 1))]
print(f"| {sched} | {slots} | {total:.2f} | {pct(50):.2f} | {pct(95):.2f} | {max(large):.2f} |")
PY
done
done
rm -rf out out[0-9]*
