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
#      SVG=docs/io_queue_depth.svg (where the plot goes; relative to the repo).
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
KEY="ct.done-$FILES-$FILE_MB"
if [ ! -f "$KEY" ]; then
  echo "generating $FILES containers of $FILE_MB MiB in $DIR/ct" >&2
  rm -rf src ct ct.done-*
  mkdir -p src
  python3 "$ROOT/benches/make_mixed.py" "$((FILE_MB * 1048576))" seed.bin
  for i in $(seq -w 1 "$FILES"); do cp seed.bin "src/f$i.bin"; done
  rm -f seed.bin
  "$BIN" -q process -r src --output-dir ct -s passthrough
  rm -rf src
  touch "$KEY"
fi

python3 - "$BIN" "$DIR/ct" "$RUNS" "$ROOT/$SVG" <<'PY'
import os, statistics, subprocess, sys, time
bin_, ct, runs, svg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = sorted(os.path.join(ct, f) for f in os.listdir(ct))
total = sum(os.path.getsize(f) for f in files)

def drop_cache():
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

rows = []
for qd in (1, 2, 4, 8, 12, 24, 48):
    walls = []
    for _ in range(runs):
        drop_cache()
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
print('| IO tokens (QD) | MB/s (median) | min–max |')
print('|---|---|---|')
for qd, mb, lo, hi in rows:
    mark = ' ← knee' if qd == knee else ''
    print(f'| {qd} | {mb:.0f}{mark} | {lo:.0f}–{hi:.0f} |')
print()
print(f'knee: QD {knee} (the smallest depth within 10% of the best, {best:.0f} MB/s)')

# The plot: QD on a log2 axis, MB/s linear, the knee marked.
import math
W, H, L, B, T, R = 560, 320, 60, 40, 20, 20
xs = [math.log2(r[0]) for r in rows]
ymax = best * 1.15
def px(x):
    return L + (x - xs[0]) / (xs[-1] - xs[0]) * (W - L - R)
def py(y):
    return H - B - y / ymax * (H - B - T)
pts = ' '.join(f'{px(x):.1f},{py(r[1]):.1f}' for x, r in zip(xs, rows))
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
for x, r in zip(xs, rows):
    out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{r[0]}</text>')
for i in range(5):
    y = ymax * i / 4
    out.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.0f}</text>')
    out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#ddd"/>')
out.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
for x, r in zip(xs, rows):
    out.append(f'<circle cx="{px(x):.1f}" cy="{py(r[1]):.1f}" r="3" fill="#1f77b4"/>')
kx = px(math.log2(knee)); ky = py(next(r[1] for r in rows if r[0] == knee))
out.append(f'<circle cx="{kx:.1f}" cy="{ky:.1f}" r="7" fill="none" stroke="#d62728" stroke-width="2"/>')
out.append(f'<text x="{kx + 10:.1f}" y="{ky - 10:.1f}" fill="#d62728">knee: QD {knee}</text>')
out.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle">IO tokens (queue depth), log scale</text>')
out.append(f'<text x="14" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 {(T + H - B) / 2})">MB/s, cold reads</text>')
out.append('</svg>')
os.makedirs(os.path.dirname(svg), exist_ok=True)
with open(svg, 'w') as f:
    f.write('\n'.join(out) + '\n')
print(f'plot: {svg}')
PY
