#!/usr/bin/env bash
# io_queue_depth.sh: read throughput against the IO tokens (the queue depth
# of concurrent reads), with the data out of the page cache, so the device
# answers. Prints a table, writes an SVG plot, marks the knee.
#
# Usage:  benches/io_queue_depth.sh [DIR]     (DIR default /tmp/syncpipe-qd)
#
# What runs: FILES containers of FILE_MB MiB each (passthrough: no CPU work
# to hide the reads behind) are verified as one batch,
#   syncpipe verify -r DIR/ct --io-tokens QD --files-in-flight 48 -q
# for QD in 1 2 4 8 12 24 48. A batch shares one governor, so QD bounds the
# reads in flight across all files (one reader thread per file, 48 files in
# flight: the tokens, not the files, are the limit). Before every run each
# container is dropped from the page cache with posix_fadvise(DONTNEED)
# (the files are clean: syncpipe fsyncs its outputs), so the reads are
# cold-ish (the device's own cache and the host's, on a virtual disk, are
# beyond reach). MB/s = container bytes / 10^6 / wall seconds, median of RUNS.
# The knee is the smallest QD within 10% of the best MB/s.
#
# Env: FILES=16, FILE_MB=64, RUNS=3, SYNCPIPE_BIN= (skip the build),
#      SVG=docs/io_queue_depth.svg (where the plot goes; relative to the repo),
#      DEPTHS="1 2 4 8 12 24 48" (the sweep),
#      SEED= (a file to cut the FILES inputs from, FILE_MB each, instead of
#      make_mixed.py's data: benches/scenario_io.sh passes the kernel tarball).
# The rows also go to DIR/io_queue_depth.tsv. Uses benches/scenario_lib.py.
# Needs python3. About 2 minutes with the defaults plus the setup (2 GiB of
# disk while it runs; the inputs are removed once the containers exist).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-qd}
FILES=${FILES:-16}
FILE_MB=${FILE_MB:-64}
RUNS=${RUNS:-3}
SVG=${SVG:-docs/io_queue_depth.svg}
command -v python3 >/dev/null || { echo "io_queue_depth.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"

mkdir -p "$DIR"
cd "$DIR"
KEY="ct.done-$FILES-$FILE_MB-$(basename "${SEED:-mixed}")"
if [ ! -f "$KEY" ]; then
  echo "generating $FILES containers of $FILE_MB MiB in $DIR/ct" >&2
  rm -rf src ct ct.done-*
  mkdir -p src
  if [ -n "${SEED:-}" ]; then
    # FILES consecutive pieces of SEED (e.g. the kernel tarball), FILE_MB each.
    python3 - "$SEED" "$FILES" "$((FILE_MB * 1048576))" <<'PY'
import sys
seed, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(seed, 'rb') as f:
    for i in range(1, n + 1):
        data = f.read(size)
        if len(data) < size:
            sys.exit(f'{seed} is shorter than {n} x {size} bytes')
        open('src/f%02d.bin' % i, 'wb').write(data)
PY
  else
    python3 "$ROOT/benches/make_mixed.py" "$((FILE_MB * 1048576))" seed.bin
    for i in $(seq -w 1 "$FILES"); do cp seed.bin "src/f$i.bin"; done
    rm -f seed.bin
  fi
  "$BIN" -q process -r src --output-dir ct -s passthrough
  rm -rf src
  touch "$KEY"
fi

python3 - "$BIN" "$DIR/ct" "$RUNS" "$ROOT/$SVG" "$ROOT/benches" "$DIR/io_queue_depth.tsv" <<'PY'
import os, statistics, subprocess, sys, time
bin_, ct, runs, svg, lib, tsv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
sys.path.insert(0, lib)
import scenario_lib as sl
files = sorted(os.path.join(ct, f) for f in os.listdir(ct))
total = sum(os.path.getsize(f) for f in files)
depths = [int(q) for q in os.environ.get('DEPTHS', '1 2 4 8 12 24 48').split()]

rows = []
for qd in depths:
    walls = []
    for _ in range(runs):
        sl.drop_cache(files)
        t0 = time.perf_counter()
        subprocess.run([bin_, 'verify', '-r', ct, '--io-tokens', str(qd),
                        '--files-in-flight', '48', '-q'], check=True)
        walls.append(time.perf_counter() - t0)
    med = statistics.median(walls)
    rows.append((qd, total / 1e6 / med, total / 1e6 / max(walls), total / 1e6 / min(walls)))

best = max(r[1] for r in rows)
knee = next(r[0] for r in rows if r[1] >= 0.9 * best)
print(f'{len(files)} containers, {total / 1e6:.0f} MB, page cache dropped before each run; '
      f'median of {runs}')
print()
table = [(qd, f'{mb:.0f}' + (' ← knee' if qd == knee else ''), f'{lo:.0f}–{hi:.0f}')
         for qd, mb, lo, hi in rows]
sl.md_table(['IO tokens (QD)', 'MB/s (median)', 'min–max'], table)
sl.write_tsv(tsv, ['io_tokens', 'mb_per_s_median', 'mb_per_s_min', 'mb_per_s_max'],
             [(qd, f'{mb:.1f}', f'{lo:.1f}', f'{hi:.1f}') for qd, mb, lo, hi in rows])
print()
print(f'knee: QD {knee} (the smallest depth within 10% of the best, {best:.0f} MB/s)')

# The plot: QD on a log2 axis, MB/s linear, the knee marked.
ki = [r[0] for r in rows].index(knee)
sl.svg_chart(svg, [dict(kind='line', title='Cold reads against IO tokens',
                        xlabel='IO tokens (queue depth), log scale', ylabel='MB/s, cold reads',
                        x=[str(r[0]) for r in rows], logx=True,
                        series=[('MB/s (median)', [r[1] for r in rows])],
                        mark=(ki, 0, f'knee: QD {knee}'))],
             note=sl.run_note(f'{len(files)} containers, {total / 1e6:.0f} MB'))
print(f'plot: {svg}; rows: {tsv}')
PY
