#!/usr/bin/env bash
# sync_vs_async.sh: the sync engine (`syncpipe process`), the async baseline
# (examples/async_pipeline.rs: the same pipeline on tokio, same container
# bytes) and the peer tools, on the same inputs in one run.
# Conventions of benches/compare.sh: page cache warm, one untimed warm-up run,
# then the median of RUNS timed runs; MB/s = input bytes / 1e6 / median wall
# seconds; CPU s = median user+sys of the command, threads and children
# included (wait4 rusage); peak RSS = largest single process, max over the
# timed runs; ratio = input bytes / output bytes; before each run the harness
# waits for the machine to be idle, and a run during which other processes
# burnt CPU is redone (the note says "other CPU" when some remained).
#
# Usage:  benches/sync_vs_async.sh [DIR]       (DIR default /tmp/syncpipe-bench)
#
# Inputs (in DIR, made once and reused):
#   mixed.bin          SIZE_MB MiB from benches/make_mixed.py (as compare.sh)
#   linux-6.1-*.tar    when /usr/src/linux-source-6.1.tar.xz exists (Debian
#                      package linux-source-6.1): its first LINUX_MB MiB,
#                      decompressed once with xz (LINUX_MB=0: the whole
#                      1.3 GB tarball)
# Rows per input: sync and async for zstd:3,aes-256-gcm,sha256 (raw key
# file), lz4,chacha20-poly1305,blake3, zstd:3, gzip:6; the peers zstd -3 -T2,
# zstd -3 -T2 | age -r, lz4 -1 | age -r, pigz -6 -p2 (a row whose tool is
# missing is skipped with a note).
#
# Both engines get the same settings explicitly: -T THREADS, --cpu-tokens,
# --io-tokens, --channel-depth, --chunk-size, and --json (the P50/P95/P99
# chunk columns come from the summary line's latency_ns.chunk_cpu of the
# median run: the worker thread's CPU time per chunk in both engines; both
# pay for the histograms). Both write through a temp
# file, fsync and rename (`-o`); the peers write through the page cache
# without fsync.
#
# Goal lines printed under the table, per input:
#   - sync zstd:3,aes-256-gcm,sha256 / (zstd -3 -T2 | age -r), goal >= 1.1
#   - sync zstd:3,aes-256-gcm,sha256 / ceiling, goal >= 0.9, where the
#     ceiling is the model of a chunked pipeline (docs/performance.md,
#     "Sync vs async, and its targets"): cores × 1000 / Σ ns per input
#     byte of the page-cache read, zstd:3, AES-256-GCM and the page-cache
#     write (on the compressed bytes) and SHA-256 (on the input), each
#     timed single-threaded on the same input in the same run with the
#     library's own stages by `examples/stage_costs.rs`
#   - sync / async per stage list: MB/s, peak RSS and P99 chunk latency
# and a second table for the sync and async rows: system CPU s, minor page
# faults and voluntary context switches (wait4 rusage, medians), which
# show where the async engine's extra CPU goes.
#
# Env:
#   SIZE_MB=512  LINUX_MB=512  RUNS=3  THREADS=2  CPU_TOKENS=THREADS
#   IO_TOKENS=12  CHANNEL_DEPTH=4  CHUNK=1MiB  IDLE_WAIT=120  REDO=2
#   SYNCPIPE_BIN= / ASYNC_BIN=   use these binaries instead of building
#   INPUTS=mixed,linux           which inputs to run
#
# Builds `cargo build --release --bin syncpipe` and
# `cargo build --release --example async_pipeline`. Needs python3.
#
# Time at the defaults on 2 quiet cores: about 6 minutes (estimated from a
# 128 MiB run: ~3.5 min of commands for 12 rows x 4 runs x 2 inputs of
# 512 MiB, gzip:6 and pigz being the slow rows, and ~2 min of syncs and
# one-second idle checks), plus the release builds and the first run's
# inputs (~40 s for mixed.bin, ~15 s of xz). On a busy machine the idle
# waits (up to IDLE_WAIT per run) make it much longer.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-/tmp/syncpipe-bench}
SIZE_MB=${SIZE_MB:-512}
LINUX_MB=${LINUX_MB:-512}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
CPU_TOKENS=${CPU_TOKENS:-$THREADS}
IO_TOKENS=${IO_TOKENS:-12}
CHANNEL_DEPTH=${CHANNEL_DEPTH:-4}
CHUNK=${CHUNK:-1MiB}
IDLE_WAIT=${IDLE_WAIT:-120}
REDO=${REDO:-2}
INPUTS=${INPUTS:-mixed,linux}
LINUX_XZ=/usr/src/linux-source-6.1.tar.xz
export RUNS IDLE_WAIT REDO

have() { command -v "$1" >/dev/null 2>&1; }
say() { echo "$*" >&2; }
have python3 || { say "sync_vs_async.sh: python3 is required"; exit 2; }

# ---------------------------------------------------------------- build
. "$ROOT/benches/binary.sh"
if [ -n "${ASYNC_BIN:-}" ]; then
  ABIN=$(cd "$(dirname "$ASYNC_BIN")" && pwd)/$(basename "$ASYNC_BIN")
else
  say "building: cargo build --release --example async_pipeline --example stage_costs (in $ROOT)"
  (cd "$ROOT" && cargo build --release --quiet --example async_pipeline --example stage_costs)
  ABIN=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/examples/async_pipeline
fi
[ -x "$ABIN" ] || { say "no async_pipeline binary at $ABIN"; exit 2; }
# The ceiling's stage costs come from the example built beside the async one.
CBIN=${STAGE_COSTS_BIN:-$(dirname "$ABIN")/stage_costs}
[ -x "$CBIN" ] || { say "no stage_costs binary at $CBIN (STAGE_COSTS_BIN=)"; exit 2; }

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cd "$DIR"
rm -rf out
mkdir -p out
TSV=$DIR/sync_vs_async.tsv
: >"$TSV"

# ---------------------------------------------------------------- harness (python3)
cat >"$DIR/.sync-vs-async.py" <<'PY'
"""measure: run one command (warm-up + RUNS) and append a row to the TSV,
with the chunk latencies of the median run's --json summary (if any).
report: print the table and the goal lines."""
import argparse, json, os, statistics, sys, time

def busy():
    v = [int(x) for x in open('/proc/stat').readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq) / os.sysconf('SC_CLK_TCK')

def wait_idle(limit):
    end = time.time() + limit
    while True:
        b0 = busy(); time.sleep(1.0); b1 = busy()
        if b1 - b0 < 0.05 or time.time() > end:
            return

def summary_of(path):
    """The last JSON `summary` line of a run's stdout, or None."""
    found = None
    try:
        for line in open(path, errors='replace'):
            if line.startswith('{'):
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if v.get('message_type') == 'summary':
                    found = v
    except OSError:
        pass
    return found

def measure(a):
    idle_wait = float(os.environ.get('IDLE_WAIT', '120'))
    redo_max = int(os.environ.get('REDO', '2'))
    log = os.path.join('out', a.id + '.log')
    runs, redone, failed, done = [], 0, 0, 0
    while done < 1 + a.runs:
        if a.out and os.path.exists(a.out):
            os.remove(a.out)
        os.sync()
        if idle_wait > 0:
            wait_idle(idle_wait)
        stdout = os.path.join('out', f'{a.id}.stdout')
        b0 = busy()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1); os.dup2(err, 2)
            os.execv('/bin/bash', ['bash', '-c', a.cmd])
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
        cpu = ru.ru_utime + ru.ru_stime
        other = max(0.0, busy() - b0 - cpu)
        rc = os.waitstatus_to_exitcode(status)
        if rc != 0:
            failed = rc
            sys.stderr.write(f'  !! rc={rc}: {a.cmd}\n{open(log, errors="replace").read()[-600:]}\n')
            break
        if done >= 1 and other > max(0.05, 0.05 * wall) and redone < redo_max:
            redone += 1
            continue
        done += 1
        if done == 1:
            continue                       # the warm-up
        runs.append((wall, cpu, ru.ru_maxrss / 1024.0, other, summary_of(stdout),
                     ru.ru_stime, ru.ru_minflt, ru.ru_nvcsw))
    ratio = ''
    if not failed and a.ratio and a.out and os.path.getsize(a.out) > 0:
        ratio = f'{a.bytes / os.path.getsize(a.out):.3f}'
    if a.out and os.path.exists(a.out):
        os.remove(a.out)
    if failed:
        row = [a.id, a.input, a.label, a.show, 'FAILED', f'rc={failed}', '', '', '', '', '', '', '', f'see out/{a.id}.log',
               '', '', '']
    else:
        walls = [r[0] for r in runs]
        # The median run: its wall time is the reported one, its summary
        # gives the latency columns (the lower middle for an even RUNS).
        med_run = sorted(runs, key=lambda r: r[0])[(len(runs) - 1) // 2]
        med = statistics.median(walls)
        mb = a.bytes / 1e6
        notes = [a.note] if a.note else []
        others = max(r[3] for r in runs)
        if others >= 0.1:
            notes.append(f'other CPU {others:.2f} s')
        if redone:
            notes.append(f'{redone} run(s) redone')
        lat = ['—', '—', '—', '']
        s = med_run[4]
        if s is not None:
            c = s.get('latency_ns', {}).get('chunk_cpu')
            if c:
                lat = [f'{c["p50"] / 1e6:.2f}', f'{c["p95"] / 1e6:.2f}', f'{c["p99"] / 1e6:.2f}', f'{c["sum"] / 1e9:.3f}']
        row = [a.id, a.input, a.label, a.show, f'{mb / med:.1f}',
               f'{mb / max(walls):.0f}–{mb / min(walls):.0f}',
               f'{statistics.median(r[1] for r in runs):.2f}',
               f'{max(r[2] for r in runs):.1f}', ratio] + lat + ['; '.join(notes)]
        # Where the CPU goes besides the stages (columns 14-16, after the
        # note so the others keep their places): system seconds, minor page
        # faults (fresh buffers fault in), voluntary context switches
        # (thread hand-offs); medians over the timed runs.
        row += [f'{statistics.median(r[5] for r in runs):.2f}',
                f'{statistics.median(r[6] for r in runs):.0f}',
                f'{statistics.median(r[7] for r in runs):.0f}']
    with open(a.tsv, 'a') as f:
        f.write('\t'.join(row) + '\n')
    sys.stderr.write('  ' + ' | '.join([row[2]] + row[4:12]) + '\n')

def report(a):
    rows = [l.rstrip('\n').split('\t') for l in open(a.tsv) if l.strip()]
    print('| input | row | MB/s (median) | min–max | CPU s | peak RSS MiB | ratio | chunk P50 / P95 / P99 ms | note |')
    print('|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        lat = ' / '.join(r[9:12]) if r[9] not in ('', '—') else '—'
        label = r[2].replace('|', '\\|')
        print(f'| {r[1]} | {label} | {r[4]} | {r[5]} | {r[6]} | {r[7]} | {r[8]} | {lat} | {r[13]} |')
    by = {(r[1], r[0]): r for r in rows}
    def num(inp, i, col):
        r = by.get((inp, i))
        try:
            return float(r[col]) if r else None
        except ValueError:
            return None
    print()
    for inp in dict.fromkeys(r[1] for r in rows):
        byts = a.sizes.get(inp)
        print(f'Goals on {inp}:')
        s, p = num(inp, 'sync_aes', 4), num(inp, 'peer_zstd_age', 4)
        if s is None or p is None:
            print('- sync zstd:3,aes-256-gcm,sha256 / zstd -3 -T2 | age -r: n/a (row skipped or failed)')
        else:
            x = s / p
            print(f'- sync zstd:3,aes-256-gcm,sha256 / zstd -3 -T2 | age -r: **{x:.2f}×** '
                  f'({s:.0f} / {p:.0f} MB/s; goal ≥ 1.1×: {"met" if x >= 1.1 else "NOT met"})')
        ceiling = a.ceilings.get(inp)
        if s is None or not ceiling:
            print('- sync zstd:3,aes-256-gcm,sha256 / ceiling: n/a')
        else:
            x = s / ceiling
            print(f'- sync zstd:3,aes-256-gcm,sha256 / ceiling: **{x:.2f}×** ({s:.0f} / {ceiling:.0f} MB/s; '
                  f'ceiling = {a.cores} cores × 1000 / Σ single-core ns/B of read, zstd:3, AES-256-GCM, '
                  f'SHA-256 and write, examples/stage_costs.rs; goal ≥ 0.9×: '
                  f'{"met" if x >= 0.9 else "NOT met"})')
        for tag, name in (('aes', 'zstd:3,aes-256-gcm,sha256'), ('chacha', 'lz4,chacha20-poly1305,blake3'),
                          ('zstd', 'zstd:3'), ('gzip', 'gzip:6')):
            sm, am = num(inp, f'sync_{tag}', 4), num(inp, f'async_{tag}', 4)
            if sm is None or am is None:
                print(f'- sync / async {name}: n/a')
                continue
            sr, ar = num(inp, f'sync_{tag}', 7), num(inp, f'async_{tag}', 7)
            sp, ap_ = num(inp, f'sync_{tag}', 11), num(inp, f'async_{tag}', 11)
            p99 = f'; P99 {sp:.2f} vs {ap_:.2f} ms' if sp is not None and ap_ is not None else ''
            print(f'- sync / async {name}: **{sm / am:.2f}×** MB/s ({sm:.0f} vs {am:.0f}); '
                  f'peak RSS {sr:.1f} vs {ar:.1f} MiB{p99}')
        print()
    print('Where the CPU goes besides the stages (medians; wait4 rusage of the whole command):')
    print()
    print('| input | row | system CPU s | minor page faults | voluntary context switches |')
    print('|---|---|---|---|---|')
    for r in rows:
        if len(r) > 16 and r[14] and (r[0].startswith('sync_') or r[0].startswith('async_')):
            print(f'| {r[1]} | {r[2]} | {r[14]} | {r[15]} | {r[16]} |')
    print()
    print('Both engines write through a temp file, fsync and rename; the peers write')
    print('through the page cache without fsync. Chunk latency: wall time of one')
    print("chunk's encoding on its worker (sync: a rayon job; async: a spawn_blocking closure).")
    if any(r[4] == 'FAILED' for r in rows):
        sys.exit(1)

ap = argparse.ArgumentParser()
ap.add_argument('mode', choices=['measure', 'report'])
ap.add_argument('--tsv', required=True)
ap.add_argument('--id', default='')
ap.add_argument('--input', default='')
ap.add_argument('--label', default='')
ap.add_argument('--show', default='')
ap.add_argument('--bytes', type=int, default=0)
ap.add_argument('--out', default='')
ap.add_argument('--ratio', action='store_true')
ap.add_argument('--note', default='')
ap.add_argument('--runs', type=int, default=int(os.environ.get('RUNS', '3')))
ap.add_argument('--cores', type=int, default=os.cpu_count())
ap.add_argument('--size', action='append', default=[])   # INPUT=BYTES
ap.add_argument('--ceiling', action='append', default=[])   # INPUT=MB/s, from stage_costs
ap.add_argument('--cmd', default='')
args = ap.parse_args()
args.sizes = {k: int(v) for k, v in (s.split('=', 1) for s in args.size)}
args.ceilings = {k: float(v) for k, v in (s.rsplit('=', 1) for s in args.ceiling)}
measure(args) if args.mode == 'measure' else report(args)
PY

# row ID INPUT LABEL BYTES CMD [harness flags...]; a command whose tool is
# not installed gets a "skipped" row. The binaries show as their names.
row() {
  local id=$1 inp=$2 label=$3 bytes=$4 cmd=$5; shift 5
  local show=${cmd//"$BIN"/syncpipe}
  show=${show//"$ABIN"/async_pipeline}
  local seg tool
  IFS='|' read -ra segs <<<"$cmd"
  for seg in "${segs[@]}"; do
    read -r tool _ <<<"$seg"
    if [ "$tool" != "$BIN" ] && [ "$tool" != "$ABIN" ] && ! have "$tool"; then
      printf '%s\t%s\t%s\t%s\tskipped\t\t\t\t\t\t\t\t\t%s not installed\n' \
        "$id" "$inp" "$label" "$show" "$tool" >>"$TSV"
      say "  $label | skipped ($tool not installed)"
      return
    fi
  done
  python3 "$DIR/.sync-vs-async.py" measure --tsv "$TSV" --id "$id" --input "$inp" \
    --label "$label" --show "$show" --bytes "$bytes" "$@" --cmd="$cmd"
}
size_of() { stat -c %s "$1"; }

# ---------------------------------------------------------------- inputs
SIZES=()
NAMES=()
CEILINGS=()
if [[ ",$INPUTS," == *",mixed,"* ]]; then
  MIXED_BYTES=$((SIZE_MB * 1048576))
  if [ ! -s mixed.bin ] || { [ "$(size_of mixed.bin)" != "$MIXED_BYTES" ] \
       && [ "$(cat .mixed.bin.req 2>/dev/null)" != "$MIXED_BYTES" ]; }; then
    say "generating mixed.bin ($SIZE_MB MiB, benches/make_mixed.py)"
    python3 "$ROOT/benches/make_mixed.py" "$MIXED_BYTES" mixed.bin
    echo "$MIXED_BYTES" >.mixed.bin.req
  fi
  NAMES+=(mixed.bin)
fi
if [[ ",$INPUTS," == *",linux,"* ]]; then
  if [ -s "$LINUX_XZ" ]; then
    if [ "$LINUX_MB" = 0 ]; then LTAR=linux-6.1.tar; else LTAR=linux-6.1-${LINUX_MB}MiB.tar; fi
    if [ ! -s "$LTAR" ]; then
      say "decompressing $LINUX_XZ into $DIR/$LTAR (once)"
      if [ "$LINUX_MB" = 0 ]; then
        xz -dc "$LINUX_XZ" >"$LTAR.tmp"
      else
        { xz -dc "$LINUX_XZ" || true; } | head -c $((LINUX_MB * 1048576)) >"$LTAR.tmp"
      fi
      mv "$LTAR.tmp" "$LTAR"
    fi
    NAMES+=("$LTAR")
  else
    say "no $LINUX_XZ (apt-get install linux-source-6.1): the Linux tarball rows are skipped"
  fi
fi
[ ${#NAMES[@]} -gt 0 ] || { say "no input selected (INPUTS=$INPUTS)"; exit 2; }
for f in "${NAMES[@]}"; do SIZES+=(--size "$f=$(size_of "$f")"); done

say "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
say "syncpipe: $BIN; async: $ABIN ($(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo 'no git'))"
for t in zstd lz4 age pigz; do
  if have $t; then say "$t: $($t --version 2>&1 | head -1)"; else say "$t: not installed (its rows are skipped)"; fi
done
say "RUNS=$RUNS THREADS=$THREADS CPU_TOKENS=$CPU_TOKENS IO_TOKENS=$IO_TOKENS CHANNEL_DEPTH=$CHANNEL_DEPTH CHUNK=$CHUNK IDLE_WAIT=$IDLE_WAIT"
for f in "${NAMES[@]}"; do
  say "$(printf '  %-22s %12d bytes  sha256 %s' "$f" "$(size_of "$f")" "$(sha256sum "$f" | cut -c1-16)")"
done

# Keys made fresh in out/ (emptied at every start); nothing secret is kept.
head -c 32 /dev/urandom >out/sp.key
RCPT=none
if have age-keygen; then
  age-keygen -o out/age.key 2>/dev/null
  RCPT=$(age-keygen -y out/age.key)
fi

# The same settings for both engines, spelled out.
SET="-T $THREADS --cpu-tokens $CPU_TOKENS --io-tokens $IO_TOKENS --channel-depth $CHANNEL_DEPTH --chunk-size $CHUNK"
for IN in "${NAMES[@]}"; do
  BYTES=$(size_of "$IN")
  say "== $IN"
  cat "$IN" >/dev/null
  # Same bytes, checked once per input before timing anything (the key
  # makes the encrypted containers differ by nonce, so zstd:3 is compared).
  "$BIN" -q process "$IN" -o out/check-s.spipe -f -s zstd:3 $SET
  "$ABIN" "$IN" -o out/check-a.spipe -f -s zstd:3 $SET
  cmp -s out/check-s.spipe out/check-a.spipe \
    || { say "sync_vs_async.sh: the async container of $IN differs from the sync one!"; exit 1; }
  rm -f out/check-s.spipe out/check-a.spipe
  # The ceiling of the goal row, measured on this input now (one core,
  # fastest of 3 passes per stage; the table goes to the log).
  chunk_bytes=$(python3 -c "
import re, sys; m = re.fullmatch(r'(\d+)\s*(|KiB|MiB|K|M)', sys.argv[1].strip())
print(int(m.group(1)) * {'': 1, 'K': 1024, 'KiB': 1024, 'M': 1 << 20, 'MiB': 1 << 20}[m.group(2)])" "$CHUNK")
  if "$CBIN" "$IN" zstd:3,aes-256-gcm,sha256 "$THREADS" "$chunk_bytes" >out/costs.json 2>out/costs.log; then
    cat out/costs.log >&2
    CEILINGS+=(--ceiling "$IN=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ceiling_mb_per_s"])' out/costs.json)")
  else
    say "stage_costs failed on $IN: $(tail -1 out/costs.log)"
  fi
  for spec in "aes zstd:3,aes-256-gcm,sha256" "chacha lz4,chacha20-poly1305,blake3" "zstd zstd:3" "gzip gzip:6"; do
    read -r tag st <<<"$spec"
    key=""
    case $st in *aes*|*chacha*) key="--key-file out/sp.key" ;; esac
    row "sync_$tag" "$IN" "sync $st" "$BYTES" \
      "$BIN -q process $IN -o out/s.spipe -f -s $st $SET $key --json" --out out/s.spipe --ratio
    row "async_$tag" "$IN" "async $st" "$BYTES" \
      "$ABIN $IN -o out/a.spipe -f -s $st $SET $key --json" --out out/a.spipe --ratio
  done
  row peer_zstd     "$IN" "zstd -3 -T2"          "$BYTES" "zstd -q -3 -T2 -c $IN >out/p.zst" --out out/p.zst --ratio
  row peer_zstd_age "$IN" "zstd -3 -T2 | age -r" "$BYTES" "zstd -q -3 -T2 -c $IN | age -r $RCPT >out/p.age" --out out/p.age --ratio
  row peer_lz4_age  "$IN" "lz4 -1 | age -r"      "$BYTES" "lz4 -q -1 -c $IN | age -r $RCPT >out/p.age" --out out/p.age --ratio
  row peer_pigz     "$IN" "pigz -6 -p2"          "$BYTES" "pigz -6 -p2 -c $IN >out/p.gz" --out out/p.gz --ratio
done

echo
python3 "$DIR/.sync-vs-async.py" report --tsv "$TSV" --cores "$THREADS" "${SIZES[@]}" "${CEILINGS[@]}"
