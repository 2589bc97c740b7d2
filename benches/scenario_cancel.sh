#!/usr/bin/env bash
# scenario_cancel.sh: scenario 5, cancellation. A real `syncpipe process
# --json` gets SIGINT at 25, 50 and 75% of its expected run (timed by one
# uncancelled run first), for a single file at zstd:3, a single file at
# brotli:9 (the slow codec: a chunk takes a large part of a second) and a
# batch of many files. What it shows, per run: the drain time (signal ->
# exit), the exit code (130), what was left behind (no destination file
# for an unfinished file, no `.syncpipe-tmp.` file; in the batch, every
# output that exists passes `syncpipe verify`), and the gauges of the final
# --json summary (CPU and IO permits available against the totals, chunk
# jobs still running, chunk bytes still held), read after the run's
# threads have stopped (a failed or cancelled run refreshes them: the
# first version of this script found that they were the last tick's), so
# they are a check: every permit back, no job running, no chunk bytes
# held. A run that ends before its
# signal (faster than the reference run) is retried once with the signal
# at the fraction of its own time.
# benches/cancel_drain.sh is the older, fixed-delay version (1 GiB, the
# slowest codecs); this one adds the checks and the fractions.
#
# Usage:  benches/scenario_cancel.sh [DIR]   (DIR default /tmp/syncpipe-scen-cancel)
#
# Env:
#   CASES="zstd:3 brotli:9 batch"   which cases
#   SIZE_MB=1024     the zstd:3 input (generated from real files, make_mixed.py)
#   BROTLI_MB=128    the brotli:9 input (a prefix of the same data)
#   BATCH_FILES=2000 the batch: files of 4 KiB-1 MiB (log-uniform), zstd:3
#   FRACTIONS="0.25 0.5 0.75"   REPS=1 (runs per fraction)
#   CORPUS=generated   or linux: the single files are the kernel tarball cut
#                    at their size, the batch the first BATCH_FILES files of
#                    the kernel tree
#   SVG=docs/scenario-5-cancel.svg   SYNCPIPE_BIN= (skip the build)
# Output: the table on stdout, DIR/scenario-5-cancel.tsv, the SVG (drain
# time per case and fraction). Exits 1 when a check fails (and says which).
# Needs python3. At the defaults 33 s on the 2-core development VM (three
# reference runs of 1.5-6 s, nine cancelled ones), plus ~20 s the first
# time for the inputs (~1.7 GB of disk).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-scen-cancel}
export CASES=${CASES:-"zstd:3 brotli:9 batch"} SIZE_MB=${SIZE_MB:-1024} BROTLI_MB=${BROTLI_MB:-128}
export BATCH_FILES=${BATCH_FILES:-2000} FRACTIONS=${FRACTIONS:-"0.25 0.5 0.75"} REPS=${REPS:-1}
export CORPUS=${CORPUS:-generated} SVG=${SVG:-docs/scenario-5-cancel.svg}
command -v python3 >/dev/null || { echo "scenario_cancel.sh: python3 is required" >&2; exit 2; }
. "$ROOT/benches/binary.sh"
mkdir -p "$DIR"
export BIN ROOT DIR

python3 - <<'PY'
import os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.environ['ROOT'], 'benches'))
import scenario_lib as sl

env = os.environ
bin_, root, d, corpus = env['BIN'], env['ROOT'], env['DIR'], env['CORPUS']
size_mb, brotli_mb, nbatch = int(env['SIZE_MB']), int(env['BROTLI_MB']), int(env['BATCH_FILES'])
fractions = [float(f) for f in env['FRACTIONS'].split()]
cases = env['CASES'].split()

# ---- inputs
key = sl.inputs_needed(d, 'in', corpus, size_mb, brotli_mb, nbatch)
if key:
    sys.stderr.write(f'making the inputs in {d}\n')
    shutil.rmtree(os.path.join(d, 'batch'), ignore_errors=True)
    for f in ('single.bin', 'brotli.bin'):
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    if corpus == 'linux':
        seed, tree = sl.linux_corpus()
        sl.copy_tree_files(tree, os.path.join(d, 'batch'), nbatch)
    else:
        seed = sl.mixed_seed(os.path.join(d, 'seed-64MiB.bin'), 64 << 20)
        sl.slices(seed, os.path.join(d, 'batch'), nbatch, 4 << 10, 1 << 20)
    sl.repeat_to(seed, size_mb << 20, os.path.join(d, 'single.bin'))
    sl.repeat_to(seed, brotli_mb << 20, os.path.join(d, 'brotli.bin'))
    sl.inputs_made(key)

out = os.path.join(d, 'out')


def command(case):
    if case == 'batch':
        return ([bin_, 'process', '-r', 'batch', '--output-dir', os.path.join(out, 'batch'),
                 '--json', '-s', 'zstd:3,blake3'], os.path.join(out, 'batch'))
    src = 'brotli.bin' if case.startswith('brotli') else 'single.bin'
    return ([bin_, 'process', src, '-o', os.path.join(out, 'x.spipe'), '--json', '-s', case],
            os.path.join(out, 'x.spipe'))


def leftovers():
    """Temp files anywhere under out/ (a cancelled file's must be gone)."""
    bad = []
    for dp, _, fns in os.walk(out):
        bad += [os.path.join(dp, f) for f in fns if '.syncpipe-tmp.' in f]
    return bad


rows, failures, plot = [], [], {}
for case in cases:
    cmd, dest = command(case)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ref = sl.measure(cmd, stdout=os.path.join(d, 'ref.json'), stderr=os.path.join(d, 'ref.err'), cwd=d)
    if ref.rc != 0:
        sys.exit(f'reference run failed, rc={ref.rc}: {" ".join(cmd)}')
    sys.stderr.write(f'{case}: uncancelled run {ref.wall:.2f} s\n')
    for frac in fractions:
        for _ in range(int(env['REPS'])):
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            js = os.path.join(d, 'run.json')
            r = sl.measure(cmd, stdout=js, stderr=js + '.err', cwd=d, sigint_after=frac * ref.wall)
            if r.drain is None and r.rc == 0:
                # Faster than the reference run (a shared machine): once
                # more, with the signal at the fraction of this run's time.
                shutil.rmtree(out, ignore_errors=True)
                os.makedirs(out)
                r = sl.measure(cmd, stdout=js, stderr=js + '.err', cwd=d, sigint_after=frac * r.wall)
            s = sl.summary(js)
            g = s.get('gauges', {})
            problems, notes = [], []
            # Exit 0 is right when the run finished before the signal or
            # before the cancel was seen: then its output must be complete.
            finished = r.rc == 0
            if r.drain is None:
                notes.append('ended before the signal (twice): no drain measured')
            elif finished:
                notes.append('the signal came as the run ended: exit 0')
            elif r.rc != 130:
                problems.append(f'exit {r.rc}')
            tmp = leftovers()
            if tmp:
                problems.append(f'{len(tmp)} temp file(s) left')
            if case == 'batch':
                present = sum(len(f) for _, _, f in os.walk(dest)) if os.path.isdir(dest) else 0
                if present:
                    v = subprocess.run([bin_, 'verify', '-r', '-q', dest], capture_output=True)
                    if v.returncode != 0:
                        problems.append(f'verify of the {present} outputs: exit {v.returncode}')
                left = f'{present} complete outputs of {nbatch}' if present else 'nothing'
            elif finished:
                v = subprocess.run([bin_, 'verify', '-q', dest], capture_output=True)
                if v.returncode != 0:
                    problems.append(f'exit 0 but the output does not verify ({v.returncode})')
                left = 'the complete output'
            else:
                left = 'destination exists!' if os.path.exists(dest) else 'nothing'
                if os.path.exists(dest):
                    problems.append('partial destination')
            if not s:
                problems.append('no summary line')
            perm = (f'{g.get("cpu_permits_available")}/{g.get("cpu_permits")}, '
                    f'{g.get("io_permits_available")}/{g.get("io_permits")}')
            gauges_clean = (g.get('cpu_permits_available') == g.get('cpu_permits')
                            and g.get('io_permits_available') == g.get('io_permits')
                            and g.get('active_workers') == 0 and g.get('buffer_bytes') == 0)
            at_rest = 'yes' if gauges_clean else 'no'
            if s and not gauges_clean:
                problems.append('the summary shows permits, jobs or chunk bytes still out')
            row = [case, f'{frac:.0%}', sl.fmt(r.signal_at), sl.fmt(r.drain, 3), r.rc,
                   left + (f'; temp: {len(tmp)}' if tmp else ''), perm, g.get('active_workers'),
                   g.get('buffer_bytes'), at_rest,
                   '; '.join(problems + notes) or 'ok']
            rows.append(row)
            plot.setdefault(case, {}).setdefault(frac, []).append(r.drain or 0.0)
            if problems:
                failures.append(f'{case} at {frac:.0%}: ' + '; '.join(problems))
            sys.stderr.write('  ' + ' | '.join(str(c) for c in row) + '\n')
shutil.rmtree(out, ignore_errors=True)

heads = ['case', 'signal at (of the run)', 'signal at s', 'drain s (signal → exit)', 'exit code',
         'left behind', 'CPU, IO permits available/total (summary)', 'active_workers',
         'buffer_bytes', 'gauges at rest', 'checks']
print(f'scenario 5, cancellation: SIGINT at {", ".join(f"{f:.0%}" for f in fractions)} of an '
      f'uncancelled run ({corpus}; zstd:3 {size_mb} MiB, brotli:9 {brotli_mb} MiB, batch '
      f'{nbatch} files, zstd:3,blake3), {os.cpu_count()} cores')
print()
sl.md_table(heads, rows)
sl.write_tsv(os.path.join(d, 'scenario-5-cancel.tsv'), heads, rows)
print()
print('checks: exit 130, no destination for an unfinished file, no temp file, every batch output '
      'that exists verifies. "gauges at rest": the summary shows every permit back, no chunk job '
      'running and no chunk bytes held, read after the threads stopped '
      '(tests/metrics.rs: after_a_failed_run_the_snapshot_shows_every_permit_back).')
svg = os.path.join(root, env['SVG'])
med = lambda v: sorted(v)[len(v) // 2]
sl.svg_chart(svg, [dict(kind='bar', title='Drain time after SIGINT (signal → exit)', xlabel='case',
                        ylabel='ms', x=list(plot),
                        series=[(f'signal at {f:.0%}', [med(plot[c][f]) * 1e3 for c in plot])
                                for f in fractions])],
             note=sl.run_note())
print(f'plot: {svg}; rows: {os.path.join(d, "scenario-5-cancel.tsv")}')
if failures:
    print('FAILED checks:\n  ' + '\n  '.join(failures))
    sys.exit(1)
PY
