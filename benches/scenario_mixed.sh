#!/usr/bin/env bash
# scenario_mixed.sh: scenario 3, mixed sizes. One large file (found first,
# as a directory walk in name order would) and many small ones in one
# batch, processed with --scheduler simple (FIFO) and fair (3 small : 1
# large, large files in at most a quarter of the slots). What it shows:
# how long the small files wait behind the large one. Where the large file
# holds only one slot of many, the policies hardly differ; where it can
# take every slot (few files in flight), FIFO makes the small files wait
# for it and fair does not, at the price of the large file finishing later.
#
# Usage:  benches/scenario_mixed.sh [DIR]    (DIR default /tmp/syncpipe-scen-mixed)
#
# Each row: syncpipe process -v --json -r mix --output-dir OUT
#             --scheduler simple|fair --files-in-flight SLOTS
# Completion time of a file = seconds from the start of the batch until it
# is done, as `-v` prints it ("done at X s", the batch's own clock); the
# --json summary gives the totals. Columns: batch wall s, small files'
# completion P50 / P95 / max s, when the last large file was done, and the mean
# small-file elapsed_s of file_done (its own processing time, without the
# wait for a slot). Median of RUNS runs per column.
#
# Env:
#   LARGE_MB=1024   the large file (the reference case's 1 GiB)
#   LARGE_COUNT=1   large files (all found first); LARGE_COUNT=4 LARGE_MB=256
#                   is the case where FIFO lets large files take every slot at SLOTS=4
#   SMALL=100       small files of SMALL_MB=10 MiB each (the reference case's 100 x 10 MiB)
#   SLOTS="0 4 1"   files in flight (0 = the default: max(2 x CPU tokens, IO tokens))
#   CORPUS=generated  or linux: the large file is the kernel tarball cut at
#                   LARGE_MB, the small ones consecutive pieces of it
#   STAGES=zstd:3,blake3  RUNS=1  IDLE_WAIT=30
#   SVG=docs/scenario-3-mixed.svg   SYNCPIPE_BIN= (skip the build)
# Output: the table on stdout, DIR/scenario-3-mixed.tsv, the SVG (bars of
# small-file P50 and P95 per scheduler and files in flight).
# Needs python3. At the defaults (2 GiB per run, 6 runs of 6-8 s) 79 s on
# the 2-core development VM with the inputs' generation (2 GiB of disk, and
# 1 GiB more for the outputs while a run goes); IDLE_WAIT adds up to 30 s a
# run on a busy machine.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-scen-mixed}
export LARGE_COUNT=${LARGE_COUNT:-1} LARGE_MB=${LARGE_MB:-1024} SMALL=${SMALL:-100} SMALL_MB=${SMALL_MB:-10}
export SLOTS=${SLOTS:-"0 4 1"} CORPUS=${CORPUS:-generated} STAGES=${STAGES:-zstd:3,blake3}
export RUNS=${RUNS:-1} IDLE_WAIT=${IDLE_WAIT:-30} SVG=${SVG:-docs/scenario-3-mixed.svg}
command -v python3 >/dev/null || { echo "scenario_mixed.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"
mkdir -p "$DIR"
export BIN ROOT DIR

python3 - <<'PY'
import os, re, shutil, statistics, subprocess, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
import scenario_lib as sl

env = os.environ
bin_, root, d = env['BIN'], env['ROOT'], env['DIR']
large_mb, small, small_mb = int(env['LARGE_MB']), int(env['SMALL']), int(env['SMALL_MB'])
nlarge = int(env['LARGE_COUNT'])
runs, corpus = int(env['RUNS']), env['CORPUS']
mix = os.path.join(d, 'mix')

# ---- inputs
key = sl.inputs_needed(d, 'mix', corpus, nlarge, large_mb, small, small_mb)
if key:
    sys.stderr.write(f'generating {nlarge} x {large_mb} MiB + {small} x {small_mb} MiB in {mix}\n')
    shutil.rmtree(mix, ignore_errors=True)
    os.makedirs(mix)
    if corpus == 'linux':
        seed = sl.linux_corpus()[0]
    else:
        seed = sl.mixed_seed(os.path.join(d, 'seed-64MiB.bin'), 64 << 20)
    for j in range(nlarge):
        sl.repeat_to(seed, large_mb << 20, os.path.join(mix, 'a-large-%d.bin' % j))
    data = open(seed, 'rb').read(max(small_mb << 20, 64 << 20) if corpus != 'linux' else 1 << 30)
    step = max(1, (len(data) - (small_mb << 20)) // max(small, 1))
    for i in range(small):
        off = (i * step) % max(1, len(data) - (small_mb << 20) + 1)
        piece = data[off:off + (small_mb << 20)]
        with open(os.path.join(mix, 'b-small-%03d.bin' % i), 'wb') as f:
            f.write(piece)
    sl.inputs_made(key)
sl.warm(sl.tree_files(mix))   # the scenario is about scheduling, not the disk

# ---- runs
out = os.path.join(d, 'out')
rows, plot = [], []
done_re = re.compile(r'^mix/(\S+) -> .* done at ([0-9.]+)s')
for slots in env['SLOTS'].split():
    for sched in ('simple', 'fair'):
        res = []
        for _ in range(runs):
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(['sync'])
            sl.wait_idle(float(env['IDLE_WAIT']))
            js = os.path.join(d, f'run-{sched}-{slots}.json')
            log = js + '.err'
            cmd = [bin_, 'process', '-v', '--json', '-r', 'mix', '--output-dir', out,
                   '--scheduler', sched, '--files-in-flight', slots, '-s', env['STAGES']]
            r = sl.measure(cmd, stdout=js, stderr=log, cwd=d)
            if r.rc != 0:
                sys.exit(f'rc={r.rc}: {" ".join(cmd)}\n' + open(log).read()[-600:])
            small_t, large_t = [], []
            for line in open(log, errors='replace'):
                m = done_re.search(line)
                if m:
                    (large_t if m.group(1).startswith('a-large') else small_t).append(float(m.group(2)))
            own = [o['elapsed_s'] for o in sl.json_lines(js)
                   if o.get('message_type') == 'file_done' and 'b-small' in o.get('input', '')]
            if len(small_t) != small or len(large_t) != nlarge:
                sys.exit(f'expected {small} small and {nlarge} large "done at" lines in {log}')
            res.append(dict(wall=r.wall, p50=sl.pct(small_t, 50), p95=sl.pct(small_t, 95),
                            max=max(small_t) if small_t else None, large=max(large_t),
                            own=sum(own) / len(own) if own else None,
                            files_in_flight=slots, cdf=sorted(small_t)))
        med = lambda k: statistics.median(x[k] for x in res)
        label = 'default' if slots == '0' else slots
        row = [sched, label, sl.fmt(med('wall')), sl.fmt(med('p50')), sl.fmt(med('p95')),
               sl.fmt(med('max')), sl.fmt(med('large')), sl.fmt(med('own'), 3)]
        rows.append(row)
        plot.append((sched, label, med('p50'), med('p95')))
        sys.stderr.write('  ' + ' | '.join(row) + '\n')
shutil.rmtree(out, ignore_errors=True)

heads = ['scheduler', 'files in flight', 'batch wall s', 'small P50 s', 'small P95 s',
         'small max s', 'last large done s', 'small own time s (mean)']
print(f'scenario 3, mixed: {nlarge} x {large_mb} MiB (first in name order) + {small} x {small_mb} MiB '
      f'({corpus}), -s {env["STAGES"]}, page cache warm, {os.cpu_count()} cores; '
      f'completion = seconds since the batch started; median of {runs}')
print()
sl.md_table(heads, rows)
sl.write_tsv(os.path.join(d, 'scenario-3-mixed.tsv'), heads, rows)
svg = os.path.join(root, env['SVG'])
labels = []
for _, lab, _, _ in plot:
    if lab not in labels:
        labels.append(lab)
get = lambda sched, k: [next(p[k] for p in plot if p[0] == sched and p[1] == lab) for lab in labels]
sl.svg_chart(svg, [
    dict(kind='bar', title='Small files: P95 completion time', xlabel='files in flight',
         ylabel='seconds since batch start', x=labels,
         series=[('simple (FIFO)', get('simple', 3)), ('fair', get('fair', 3))]),
    dict(kind='bar', title='Small files: P50 completion time', xlabel='files in flight',
         ylabel='seconds since batch start', x=labels,
         series=[('simple (FIFO)', get('simple', 2)), ('fair', get('fair', 2))]),
], note=sl.run_note(f'{nlarge} x {large_mb} MiB + {small} x {small_mb} MiB, {env["STAGES"]}'))
print()
print(f'plot: {svg}; rows: {os.path.join(d, "scenario-3-mixed.tsv")}')
PY
