#!/usr/bin/env bash
# ratio.sh: syncpipe's zstd stage against `zstd -T2` on the same input, in
# the same run: output size (container overhead included), compression
# MB/s, restore MB/s against `zstd -d`, and the encrypted pipeline
# (zstd:3,aes-256-gcm,sha256 against `zstd -3 -T2 | age -r`).
#
# Every round runs each command of a comparison once, in a fresh random
# order, and a row's figure is the median over the rounds, so a
# neighbour's burst on this 2-core VM hits both sides alike.
#
# Usage:  benches/ratio.sh [DIR]
#   DIR default /tmp/syncpipe-bench, holding the inputs:
#     linux-6.1-512MiB.tar  xz -dc /usr/src/linux-source-6.1.tar.xz | head -c 536870912
#     mixed.bin             python3 benches/make_mixed.py 536870912 mixed.bin
#   Outputs go to DIR/out/ (page cache; -c >file, no fsync timed).
# Env:
#   INPUTS="linux-6.1-512MiB.tar mixed.bin"
#   ROUNDS=3  THREADS=2  SYNCPIPE_BIN= (skip the build)
#   L19_BYTES=67108864   level 19 runs on this prefix of each input (it
#                        is ~4 MB/s per core); 0 skips level 19
# Output: per input and level a table (ratio, MB/s median and min-max),
# then one line per goal, "met" or "NOT met":
#   size within 1% of zstd -T2 at levels 3 and 19; compression >= 1.1x
#   zstd -T2; restore >= 1.5x zstd -d; encrypted pipeline >= 1.1x
#   zstd -3 -T2 | age. Exit 0 either way (a measurement, not a test).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
export INPUTS=${INPUTS:-"linux-6.1-512MiB.tar mixed.bin"}
export ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-2} L19_BYTES=${L19_BYTES:-67108864}
for tool in python3 zstd age age-keygen; do
  command -v "$tool" >/dev/null || { echo "ratio.sh: $tool is required" >&2; exit 2; }
done
. "$ROOT/benches/binary.sh"
mkdir -p "$DIR/out"
export BIN DIR

python3 - <<'PY'
import os, random, statistics, subprocess, sys, time

env = os.environ
bin_, d = env['BIN'], env['DIR']
rounds, threads = int(env['ROUNDS']), env['THREADS']
out = os.path.join(d, 'out')
key = os.path.join(out, 'ratio.key')
with open(key, 'wb') as f:
    f.write(os.urandom(32))
age_id = os.path.join(out, 'ratio.age')
if os.path.exists(age_id):
    os.remove(age_id)
subprocess.run(['age-keygen', '-o', age_id], check=True, capture_output=True)
recipient = subprocess.run(['age-keygen', '-y', age_id], check=True, capture_output=True,
                           text=True).stdout.strip()

def timed(cmd):
    """Wall seconds of one shell command (stdout redirected inside cmd)."""
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, executable='/bin/bash')
    return time.perf_counter() - start

def race(cmds):
    """cmds: {label: shell command}; each round runs all once in random order."""
    times = {k: [] for k in cmds}
    for _ in range(rounds):
        order = list(cmds)
        random.shuffle(order)
        for k in order:
            times[k].append(timed(cmds[k]))
    return times

def mbs(n, ts):
    speeds = sorted(n / t / 1e6 for t in ts)
    return statistics.median(speeds), speeds[0], speeds[-1]

def row(label, ratio, n, ts):
    med, lo, hi = mbs(n, ts)
    print(f'  {label:<34} ratio {ratio:7.3f}   {med:7.1f} MB/s  ({lo:.1f}-{hi:.1f})')
    return med

goals = []
def goal(text, ok):
    goals.append(f'goal {"met    " if ok else "NOT met"}  {text}')

for name in env['INPUTS'].split():
    src = name if os.path.isabs(name) else os.path.join(d, name)
    if not os.path.exists(src):
        print(f'ratio.sh: no input at {src} (see the usage at the top)', file=sys.stderr)
        sys.exit(2)
    base = os.path.basename(src)
    plans = [(3, src)]
    if int(env['L19_BYTES']) > 0:
        prefix = os.path.join(out, f'{base}.prefix')
        with open(src, 'rb') as f, open(prefix, 'wb') as p:
            p.write(f.read(int(env['L19_BYTES'])))
        plans.append((19, prefix))
    for level, inp in plans:
        n = os.path.getsize(inp)
        sp, zs = os.path.join(out, 'r.spipe'), os.path.join(out, 'r.zst')
        print(f'{base}, {n} bytes, level {level} (rounds {rounds}, -T {threads})')
        t = race({
            'syncpipe': f'{bin_} process -q -T {threads} -s zstd:{level} -c {inp} > {sp}',
            'zstd': f'zstd -q -{level} -T2 -c {inp} > {zs}',
        })
        sp_size, zs_size = os.path.getsize(sp), os.path.getsize(zs)
        a = row(f'syncpipe process -s zstd:{level}', n / sp_size, n, t['syncpipe'])
        b = row(f'zstd -{level} -T2', n / zs_size, n, t['zstd'])
        over = (sp_size / zs_size - 1) * 100
        print(f'  size: syncpipe {sp_size} vs zstd {zs_size} ({over:+.2f}%), speed {a / b:.2f}x')
        goal(f'{base} zstd:{level} size within 1% of zstd -{level} -T2 ({over:+.2f}%)',
             over <= 1.0)
        goal(f'{base} zstd:{level} compression >= 1.1x zstd -T2 ({a / b:.2f}x)', a >= 1.1 * b)
        if level != 3:
            continue
        t = race({
            'syncpipe': f'{bin_} restore -q -T {threads} -c {sp} > /dev/null',
            'zstd': f'zstd -q -d -c {zs} > /dev/null',
        })
        a = row('syncpipe restore', n / sp_size, n, t['syncpipe'])
        b = row('zstd -d', n / zs_size, n, t['zstd'])
        goal(f'{base} restore >= 1.5x zstd -d ({a / b:.2f}x)', a >= 1.5 * b)
        se, ze = os.path.join(out, 'r.enc.spipe'), os.path.join(out, 'r.age')
        t = race({
            'syncpipe': f'{bin_} process -q -T {threads} -s zstd:3,aes-256-gcm,sha256 '
                        f'--key-file {key} -c {inp} > {se}',
            'zstd|age': f'zstd -q -3 -T2 -c {inp} | age -r {recipient} > {ze}',
        })
        a = row('syncpipe zstd:3,aes-256-gcm,sha256', n / os.path.getsize(se), n,
                t['syncpipe'])
        b = row('zstd -3 -T2 | age -r', n / os.path.getsize(ze), n, t['zstd|age'])
        goal(f'{base} encrypted pipeline >= 1.1x zstd -3 -T2 | age ({a / b:.2f}x)',
             a >= 1.1 * b)
print()
print('\n'.join(goals))
PY
