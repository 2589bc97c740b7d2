#!/usr/bin/env bash
# metrics_overhead.sh: what collecting metrics costs the CLI, metrics off
# against metrics on, in one run, interleaved (off, on, off, on, ...) so
# that drift of a shared machine hits both sides alike.
#
# Usage:  benches/metrics_overhead.sh [DIR]     (DIR default /tmp/syncpipe-metrics-bench)
#
#   DIR/mixed-SIZE_MB.bin is generated when absent: SIZE_MB MiB of regular
#   files from /usr/share, /usr/lib, /usr/bin in md5(path) order (the
#   recipe of benches/compare.sh, so it is the first SIZE_MB MiB of its
#   mixed.bin). Outputs go to /dev/shm (tmpfs: no disk in the measurement).
#
# Rows (all `process -s zstd:3 -T2 -f`; the target: with metrics on, a zstd:3
# run loses at most 3% of its throughput against metrics off):
#   off         --progress never                    no Metrics object at all
#   on (json)   --json --metrics-interval 200ms     every counter, histogram,
#                                                   the ticker thread and a
#                                                   status line per tick
#   on (prom)   --prometheus-file F (200ms)         the same plus a textfile
#                                                   rewritten every tick
#   on (json, 10ms)  as "on (json)" at the shortest interval allowed: 20
#                    times the snapshots, copies and lines (the worst case)
# Env: SIZE_MB=256, RUNS=7 (timed runs per row, after one untimed warm-up
# of each), SYNCPIPE_BIN= to skip the build.
# Prints one table: median and min-max MB/s (10^6 bytes of input per wall
# second), median CPU seconds (user + sys), and the cost of each "on" row
# against "off" in both (medians; positive = metrics on is slower / uses
# more CPU). On a shared machine the CPU column is the steadier one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-metrics-bench}
SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-7}
. "$ROOT/benches/binary.sh"
mkdir -p "$DIR"
IN=$DIR/mixed-${SIZE_MB}MiB.bin
if [ ! -s "$IN" ]; then
  echo "generating $IN" >&2
  python3 "$ROOT/benches/make_mixed.py" "$((SIZE_MB * 1048576))" "$IN"
fi
OUT=/dev/shm/syncpipe-metrics-bench.$$
trap 'rm -f "$OUT".*' EXIT
python3 - "$BIN" "$IN" "$OUT" "$RUNS" <<'PY'
import os, resource, statistics, subprocess, sys, time
bin_, inp, out, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size = os.path.getsize(inp)
base = [bin_, '-q', 'process', inp, '-f', '-s', 'zstd:3', '-T2']
rows = [
    ('off', base + ['-o', out + '.off', '--progress', 'never']),
    ('on (json)', base + ['-o', out + '.json', '--json', '--metrics-interval', '200ms']),
    ('on (prom)', base + ['-o', out + '.prom', '--progress', 'never',
                          '--prometheus-file', out + '.txt', '--metrics-interval', '200ms']),
    ('on (json, 10ms)', base + ['-o', out + '.fast', '--json', '--metrics-interval', '10ms']),
]
def once(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu
for _, cmd in rows:
    once(cmd)  # warm-up: page cache, first-touch of the output
speeds = {name: [] for name, _ in rows}
cpus = {name: [] for name, _ in rows}
for _ in range(runs):
    for name, cmd in rows:
        wall, cpu = once(cmd)
        speeds[name].append(size / 1e6 / wall)
        cpus[name].append(cpu)
off = statistics.median(speeds['off'])
off_cpu = statistics.median(cpus['off'])
print(f'input {inp}: {size} bytes; {runs} interleaved runs per row; MB/s = 10^6 bytes / wall s;'
      ' CPU s = user + sys of the process')
print('| row | median MB/s | min-max | throughput cost vs off | median CPU s | CPU cost vs off |')
print('|---|---|---|---|---|---|')
for name, _ in rows:
    v, c = speeds[name], cpus[name]
    med, cmed = statistics.median(v), statistics.median(c)
    over = '' if name == 'off' else f'{(off - med) / off * 100:+.1f}%'
    cover = '' if name == 'off' else f'{(cmed - off_cpu) / off_cpu * 100:+.1f}%'
    print(f'| {name} | {med:.1f} | {min(v):.0f}-{max(v):.0f} | {over} | {cmed:.3f} | {cover} |')
PY
