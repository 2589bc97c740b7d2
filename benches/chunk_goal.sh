#!/usr/bin/env bash
# chunk_goal.sh: the target for --chunk-method hillclimb, measured so
# that the machine's drift cannot decide it: hillclimb within 5% of the
# best fixed chunk size, without being told it.
#
# compare.sh's chunk section runs all runs of one row back to back, so a
# neighbour's burst or a slow minute lands on one row and not the others;
# on this 2-core VM that alone moves a row by 5-15%, as much as the
# differences being measured. Here every round runs each setting once, in
# a fresh random order, and a row's figure is the median over the rounds:
# drift hits every row alike.
#
# Usage:  benches/chunk_goal.sh [DIR]
#   DIR default /tmp/syncpipe-bench: mixed.bin there (made by compare.sh,
#   or any file named by INPUT=); the container is written to DIR/out/ in
#   the page cache (-c >file, as compare.sh does), so the disk is not the
#   bottleneck and no fsync is timed.
# Env:
#   INPUT=mixed.bin          the file (relative to DIR, or absolute); the
#                            kernel's first 512 MiB is
#                            INPUT=linux-6.1-512MiB.tar, which
#                            benches/sync_vs_async.sh leaves in DIR
#   STAGES="zstd:3 lz4 passthrough"   one stage list per table
#   SIZES="128KiB 256KiB 512KiB 1MiB 2MiB 4MiB"   the fixed rows
#   ROUNDS=7  THREADS=2  IDLE_WAIT=10 (seconds to wait for a quiet machine
#   before each run)  SYNCPIPE_BIN= (skip the build)
#   OTHER_BIN="label=/path/to/syncpipe"   one more hillclimb row, run by
#   another build in the same rounds (an A/B of a change to the climber)
# Output: per stage list, a table of MB/s (median, min-max over the
# rounds), CPU s, ratio and the CPU other processes used during the runs;
# then hillclimb against the best fixed row and against 1 MiB, and the
# sizes hillclimb chose (its -v line, from one more run). DIR/chunk_goal.tsv
# has every run.
# At the defaults 7 rounds × 3 lists × 8 rows of ~1 s plus the idle waits:
# about 6 minutes on the development VM.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
export INPUT=${INPUT:-mixed.bin} STAGES=${STAGES:-"zstd:3 lz4 passthrough"}
export SIZES=${SIZES:-"128KiB 256KiB 512KiB 1MiB 2MiB 4MiB"}
export ROUNDS=${ROUNDS:-7} THREADS=${THREADS:-2} IDLE_WAIT=${IDLE_WAIT:-10}
command -v python3 >/dev/null || { echo "chunk_goal.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"
mkdir -p "$DIR/out"
export BIN ROOT DIR

python3 - <<'PY'
import os, random, statistics, subprocess, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
import scenario_lib as sl

env = os.environ
bin_, d = env['BIN'], env['DIR']
inp = env['INPUT'] if os.path.isabs(env['INPUT']) else os.path.join(d, env['INPUT'])
if not os.path.exists(inp):
    print(f'chunk_goal.sh: no input at {inp} (run benches/compare.sh once, or set INPUT=)',
          file=sys.stderr)
    sys.exit(2)
size = os.path.getsize(inp)
out = os.path.join(d, 'out', 'goal.spipe')
stages = env['STAGES'].split()
rows = [('fixed ' + s, ['--chunk-size', s]) for s in env['SIZES'].split()]
rows += [('filesize', ['--chunk-method', 'filesize']), ('hillclimb', ['--chunk-method', 'hillclimb'])]
bins = {name: bin_ for name, _ in rows}
other = env.get('OTHER_BIN', '')
if other:
    label, sep, path = other.partition('=')
    if not sep or not os.access(path, os.X_OK):
        print(f'chunk_goal.sh: OTHER_BIN must be LABEL=/path/to/syncpipe, got {other!r}',
              file=sys.stderr)
        sys.exit(2)
    rows.append((f'hillclimb ({label})', ['--chunk-method', 'hillclimb']))
    bins[rows[-1][0]] = os.path.abspath(path)
rounds, threads, idle = int(env['ROUNDS']), env['THREADS'], float(env['IDLE_WAIT'])

def cmd(st, flags, b=bin_):
    return [b, '-q', 'process', inp, '-c', '-T', threads, '-s', st] + flags

sl.warm([inp])
runs = []   # (stage, row, round, MB/s, cpu s, other cpu s, ratio)
rng = random.Random(6)
for r in range(rounds):
    order = [(st, name, flags) for st in stages for name, flags in rows]
    rng.shuffle(order)
    for st, name, flags in order:
        sl.wait_idle(idle)
        res = sl.measure(cmd(st, flags, bins[name]), stdout=out)
        if res.rc != 0:
            sys.exit(f'chunk_goal.sh: {st} {name} exited {res.rc}')
        ratio = size / max(1, os.path.getsize(out))
        runs.append((st, name, r, size / 1e6 / res.wall, res.cpu, res.other, ratio))
    print(f'round {r + 1}/{rounds} done', file=sys.stderr)

sl.write_tsv(os.path.join(d, 'chunk_goal.tsv'),
             ['stages', 'row', 'round', 'mb_s', 'cpu_s', 'other_cpu_s', 'ratio'], runs)

print(f'# chunk_goal.sh: {os.path.basename(inp)} ({size / 2**20:.0f} MiB), -T{threads}, '
      f'{rounds} rounds in random order; {sl.run_note()}')
for st in stages:
    table, med = [], {}
    for name, _ in rows:
        mine = [x for x in runs if x[0] == st and x[1] == name]
        mbs = [x[3] for x in mine]
        med[name] = statistics.median(mbs)
        table.append([name, f'{med[name]:.1f}', f'{min(mbs):.0f}–{max(mbs):.0f}',
                      f'{statistics.median(x[4] for x in mine):.2f}',
                      f'{statistics.median(x[6] for x in mine):.3f}',
                      f'{statistics.median(x[5] for x in mine):.2f}'])
    print(f'\n## {st}\n')
    sl.md_table(['chunks', 'MB/s (median)', 'min–max', 'CPU s', 'ratio',
                       'other CPU s'], table)
    fixed = {n: v for n, v in med.items() if n.startswith('fixed ')}
    best = max(fixed, key=fixed.get)
    print()
    for name in [n for n in med if n.startswith('hillclimb')]:
        hc = med[name]
        line = (f'{name} {hc:.1f} MB/s: {100 * (hc / fixed[best] - 1):+.1f}% against the best '
                f'fixed row ({best[6:]}, {fixed[best]:.1f})')
        if 'fixed 1MiB' in fixed:
            line += f', {100 * (hc / fixed["fixed 1MiB"] - 1):+.1f}% against 1 MiB'
        print(f'{line}; goal (within 5%): {"met" if hc >= 0.95 * fixed[best] else "NOT met"}')
    verbose = [a for a in cmd(st, ['--chunk-method', 'hillclimb', '-v']) if a != '-q']
    v = subprocess.run(verbose, stdout=open(out, 'wb'),
                       stderr=subprocess.PIPE, text=True).stderr
    for line in v.splitlines():
        if 'chunk s' in line:
            print('  ' + line.replace('syncpipe: ', ''))
PY
