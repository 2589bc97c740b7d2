#!/usr/bin/env bash
# scenario_cpu.sh: scenario 1, CPU-bound. Many small files on fast storage
# (tmpfs), processed as one batch while the CPU tokens are swept. What it
# shows: throughput stops growing once the tokens reach the core count;
# the tokens cap the run queue near that count (CPU jobs beyond the tokens
# wait for a permit instead of competing for a core), so chunk latency
# stays put; with many more tokens than cores the run queue and the P95
# grow while throughput does not.
#
# Usage:  benches/scenario_cpu.sh [DIR]
#   DIR default /dev/shm/syncpipe-scen-cpu (tmpfs: no disk in the picture),
#   /tmp/syncpipe-scen-cpu when /dev/shm has under 3 GiB free.
#
# Each row: syncpipe process -r DIR/in --output-dir OUT --json
#             -T N --cpu-tokens N --files-in-flight FIF -s STAGES --chunk-size CHUNK
# -T follows the tokens so that the pool always has a thread per token: the
# tokens are the only cap on chunk jobs running at once. (Files under
# 256 KiB are encoded inline on the batch's worker threads, FIF of them,
# also under a CPU token.)
#
# Columns: files/s and MB/s (input bytes / 10^6 / wall s), CPU util (CPU s
# of the process / wall s / cores), run queue mean and max (procs_running
# of /proc/stat sampled every 10 ms during the run, minus the sampler; the
# whole machine, so other processes count too), runnable threads of the
# syncpipe process by role (its /proc/PID/task/*/stat sampled every 20 ms:
# the chunk pool `syncpipe-cpu-*`, whose jobs the CPU tokens bound; the
# batch workers, which read, encode (files under 256 KiB, under a CPU
# token) and write; the per-file reader, dispatcher and writer threads of
# larger files; the rest), chunk P50/P95/P99 ms (the
# summary's latency_ns.chunk_time: wall time of one chunk's job, files of
# 256 KiB and more), file P95 ms (file_done elapsed_s, every file).
# Medians of RUNS runs, each column on its own.
#
# Env:
#   TOKENS="1 2 4 8 16"   the sweep
#   FILES=3000            generated files, 4 KiB-1 MiB log-uniform (~560 MB),
#                         cut from 32 MiB of real files (make_mixed.py)
#   CORPUS=generated      or linux: the first FILES files of the kernel tree
#                         (benches/corpus.sh; copied into DIR/in)
#   STAGES=zstd:3,blake3  CHUNK=128KiB  FIF=32 (files in flight)
#   THREADS=tokens        -T follows the tokens; a number fixes the pool
#                         (THREADS=16: the tokens alone decide how many
#                         chunk jobs run, the pool always has threads to spare)
#   IO_TOKENS=            --io-tokens (default: syncpipe's, 12 here); the
#                         batch's reads and writes on tmpfs are CPU work
#                         too, governed by these, not by the CPU tokens
#   RUNS=3  IDLE_WAIT=30 (seconds to wait for a quiet machine before each run)
#   SVG=docs/scenario-1-cpu.svg   SYNCPIPE_BIN= (skip the build)
# Output: the table on stdout, DIR/scenario-1-cpu.tsv, the SVG (files/s and
# P95 against the tokens).
# Needs python3. At the defaults 3 minutes on the 2-core development VM,
# the inputs' generation included (15 runs of 2-3 s; most of the rest was
# IDLE_WAIT on a machine that other builds kept busy; IDLE_WAIT=0 for a
# quick look).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shm_free=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
if [ "${shm_free:-0}" -gt $((3 * 1048576)) ]; then DEF=/dev/shm/syncpipe-scen-cpu; else DEF=/tmp/syncpipe-scen-cpu; fi
DIR=${1:-$DEF}
export TOKENS=${TOKENS:-"1 2 4 8 16"} FILES=${FILES:-3000} CORPUS=${CORPUS:-generated}
export STAGES=${STAGES:-zstd:3,blake3} CHUNK=${CHUNK:-128KiB} FIF=${FIF:-32}
export RUNS=${RUNS:-3} IDLE_WAIT=${IDLE_WAIT:-30} SVG=${SVG:-docs/scenario-1-cpu.svg}
export THREADS=${THREADS:-tokens} IO_TOKENS=${IO_TOKENS:-}
command -v python3 >/dev/null || { echo "scenario_cpu.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"
mkdir -p "$DIR"
export BIN ROOT DIR

python3 - <<'PY'
import os, shutil, statistics, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
import scenario_lib as sl

env = os.environ
bin_, root, d = env['BIN'], env['ROOT'], env['DIR']
files, runs, corpus = int(env['FILES']), int(env['RUNS']), env['CORPUS']
tokens = [int(t) for t in env['TOKENS'].split()]
cores = os.cpu_count()

# ---- inputs (kept between runs; remade when the knobs change)
inp = os.path.join(d, 'in')
key = sl.inputs_needed(d, 'in', corpus, files)
if key:
    shutil.rmtree(inp, ignore_errors=True)
    if corpus == 'linux':
        sl.copy_tree_files(sl.linux_corpus()[1], inp, files)
    else:
        sys.stderr.write(f'generating {files} files in {inp}\n')
        seed = sl.mixed_seed(os.path.join(d, 'seed-32MiB.bin'), 32 << 20)
        sl.slices(seed, inp, files, 4 << 10, 1 << 20)
    sl.inputs_made(key)
paths = sl.tree_files(inp)
total = sum(os.path.getsize(p) for p in paths)
sys.stderr.write(f'{len(paths)} files, {total / 1e6:.0f} MB in {inp}; {cores} cores\n')

# ---- runs
rows, plot = [], []
out = os.path.join(d, 'out')
for t in tokens:
    res = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        sl.wait_idle(float(env['IDLE_WAIT']))
        js = os.path.join(d, f'run-{t}.json')
        threads = str(t) if env['THREADS'] == 'tokens' else env['THREADS']
        cmd = [bin_, 'process', '-r', inp, '--output-dir', out, '--json',
               '-T', threads, '--cpu-tokens', str(t), '--files-in-flight', env['FIF'],
               '-s', env['STAGES'], '--chunk-size', env['CHUNK']]
        if env['IO_TOKENS']:
            cmd += ['--io-tokens', env['IO_TOKENS']]
        r = sl.measure(cmd, stdout=js, stderr=js + '.err', sample_runq=True, sample_threads=True)
        if r.rc != 0:
            sys.exit(f'rc={r.rc}: {" ".join(cmd)}\n' + open(js + '.err').read()[-600:])
        s = sl.summary(js)
        done = [o['elapsed_s'] * 1e3 for o in sl.json_lines(js) if o.get('message_type') == 'file_done']
        res.append(dict(wall=r.wall, cpu=r.cpu, runq_mean=r.runq_mean(), runq_max=r.runq_max(),
                        pool=r.threads_mean('pool'), pool_max=r.threads_max('pool'),
                        batch=r.threads_mean('batch'), perfile=r.threads_mean('per-file'),
                        other_thr=r.threads_mean('other'),
                        p50=sl.latency_ms(s, 'chunk_time', 'p50'), p95=sl.latency_ms(s, 'chunk_time', 'p95'),
                        p99=sl.latency_ms(s, 'chunk_time', 'p99'), file95=sl.pct(done, 95), other=r.other))
    med = lambda k: (statistics.median([x[k] for x in res if x[k] is not None])
                     if any(x[k] is not None for x in res) else None)
    wall = med('wall')
    row = [t, f'{len(paths) / wall:,.0f}', f'{total / 1e6 / wall:.0f}',
           f'{med("cpu") / wall / cores * 100:.0f}%', sl.fmt(med('runq_mean'), 1), f'{med("runq_max"):.0f}',
           f'{sl.fmt(med("pool"), 2)} / {med("pool_max"):.0f}', sl.fmt(med('batch'), 2),
           sl.fmt(med('perfile'), 2), sl.fmt(med('other_thr'), 2),
           sl.fmt(med('p50')), sl.fmt(med('p95')), sl.fmt(med('p99')), sl.fmt(med('file95')),
           f'{max(x["other"] for x in res):.1f}']
    rows.append(row)
    plot.append((len(paths) / wall, med('p95')))
    sys.stderr.write('  ' + ' | '.join(str(c) for c in row) + '\n')
shutil.rmtree(out, ignore_errors=True)

heads = ['CPU tokens' + (' (= -T)' if env['THREADS'] == 'tokens' else ''), 'files/s', 'MB/s', 'CPU util', 'run queue mean', 'run queue max',
         'runnable: chunk pool mean / max', 'batch workers', 'per-file threads', 'other',
         'chunk P50 ms', 'chunk P95 ms', 'chunk P99 ms', 'file P95 ms', 'other CPU s (max)']
print(f'scenario 1, CPU-bound: {len(paths)} files ({env["CORPUS"]}), {total / 1e6:.0f} MB on '
      f'{"tmpfs" if d.startswith("/dev/shm") else d}, {cores} cores, -s {env["STAGES"]} '
      f'--chunk-size {env["CHUNK"]} --files-in-flight {env["FIF"]}'
      f'{"" if env["THREADS"] == "tokens" else " -T " + env["THREADS"]}'
      f'{" --io-tokens " + env["IO_TOKENS"] if env["IO_TOKENS"] else ""}; median of {runs}')
print()
sl.md_table(heads, rows)
sl.write_tsv(os.path.join(d, 'scenario-1-cpu.tsv'), heads, rows)
svg = os.path.join(root, env['SVG'])
x = [str(t) for t in tokens]
sl.svg_chart(svg, [
    dict(kind='line', title='Throughput against CPU tokens', xlabel='CPU tokens (= threads), log scale',
         ylabel='files/s', x=x, logx=True, series=[('files/s', [p[0] for p in plot])]),
    dict(kind='line', title='Chunk latency P95 against CPU tokens', xlabel='CPU tokens (= threads), log scale',
         ylabel='P95 ms', x=x, logx=True, series=[('chunk P95 ms', [p[1] for p in plot])]),
], note=sl.run_note(f'{len(paths)} files, {env["STAGES"]}'))
print()
print(f'plot: {svg}; rows: {os.path.join(d, "scenario-1-cpu.tsv")}')
PY
