"""scenario_lib.py: what the scenario scripts (benches/scenario_*.sh) share.

- measure(): run one command, wall clock and wait4 rusage (CPU seconds of
  the process and its threads, peak RSS of the largest process), optionally
  sampling the kernel's run queue meanwhile and sending SIGINT after a delay.
- wait_idle(): wait for the machine to be quiet before a timed run.
- json_lines() / summary(): read a `--json` stream (docs/json.md).
- pct(), md_table(), write_tsv(): percentiles and the printed table.
- svg_chart(): a small dependency-free SVG writer, line or bar panels
  stacked vertically (the plots in docs/).
- corpus(): the Linux kernel source as a real corpus, when Debian's
  linux-source-6.1 package is installed.
- mixed_seed() / repeat_to() / slices(): generated inputs.

Used as a module (the scripts' inline python puts benches/ on sys.path)
and as a command for the input makers:
    python3 benches/scenario_lib.py corpus DIR         (prints what it made)
    python3 benches/scenario_lib.py repeat SRC BYTES DST
Standard library only.
"""
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LINUX_XZ = '/usr/src/linux-source-6.1.tar.xz'


# ---------------------------------------------------------------- the machine

def busy():
    """Busy CPU seconds of the whole machine so far (all cores), /proc/stat."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, _steal = v
    return (user + nice + system + irq + softirq) / os.sysconf('SC_CLK_TCK')


def wait_idle(limit):
    """Wait until less than 5% of one core was busy for a second, at most
    `limit` seconds (0: do not wait). On a shared machine this keeps a run
    from starting in the middle of someone else's burst."""
    end = time.time() + limit
    while limit > 0:
        b0 = busy()
        time.sleep(1.0)
        if busy() - b0 < 0.05 or time.time() > end:
            return


def procs_running():
    """Threads runnable right now, the whole machine (/proc/stat)."""
    with open('/proc/stat') as f:
        for line in f:
            if line.startswith('procs_running'):
                return int(line.split()[1])
    return 0


# Thread-name prefixes of a syncpipe process, grouped by role (the engine
# names its threads: src/stream/mod.rs, src/batch/mod.rs, src/cpu_pool.rs).
THREAD_GROUPS = (('pool', ('syncpipe-cpu',)),
                 ('batch', ('syncpipe-batch',)),
                 ('per-file', ('syncpipe-reader', 'syncpipe-dispat', 'syncpipe-writer')))


def runnable_threads(pid):
    """Runnable (state R) threads of process `pid` right now, counted per
    THREAD_GROUPS entry and 'other' (scheduler, committer, main...)."""
    counts = {g: 0 for g, _ in THREAD_GROUPS}
    counts['other'] = 0
    try:
        tids = os.listdir(f'/proc/{pid}/task')
    except OSError:
        return counts
    for tid in tids:
        try:
            with open(f'/proc/{pid}/task/{tid}/stat') as f:
                st = f.read()
        except OSError:
            continue
        # "tid (comm) S ...": the comm may hold spaces, the state follows ')'.
        comm = st[st.index('(') + 1:st.rindex(')')]
        if st[st.rindex(')') + 2] != 'R':
            continue
        group = next((g for g, pre in THREAD_GROUPS if comm.startswith(pre)), 'other')
        counts[group] += 1
    return counts


class Result:
    """One run: wall s, CPU s (user+sys, threads included), peak RSS MiB
    (the largest process, wait4), exit code, other CPU s (what the rest of
    the machine burnt meanwhile), run-queue samples, SIGINT timing."""

    def __init__(self):
        self.wall = self.cpu = self.rss_mib = self.other = 0.0
        self.rc = 0
        self.runq = []
        self.threads = []       # runnable_threads() samples
        self.signal_at = None   # seconds after the start
        self.drain = None       # seconds from the signal to the exit

    def runq_mean(self):
        return sum(self.runq) / len(self.runq) if self.runq else float('nan')

    def runq_max(self):
        return max(self.runq) if self.runq else 0

    def threads_mean(self, group):
        """Mean runnable threads of one THREAD_GROUPS group (or 'other')."""
        v = [t[group] for t in self.threads]
        return sum(v) / len(v) if v else float('nan')

    def threads_max(self, group):
        return max((t[group] for t in self.threads), default=0)


def measure(cmd, stdout=None, stderr=None, cwd=None, sample_runq=False,
            interval=0.01, sigint_after=None, sample_threads=False):
    """Run `cmd` (a list) to the end and measure it.

    stdout/stderr: paths (None: /dev/null). sample_runq: read procs_running
    every `interval` s while it runs (minus one for the sampler itself,
    which is running when it reads). sample_threads: also count the
    child's runnable threads per role (runnable_threads) every 2 intervals:
    it reads one /proc file per thread, so it is sampled less often.
    sigint_after: send SIGINT this many
    seconds after the start and time the drain (signal -> exit)."""
    r = Result()
    out = open(stdout or os.devnull, 'wb')
    err = open(stderr or os.devnull, 'wb')
    done = threading.Event()

    def sampler():
        n = 0
        while not done.wait(interval):
            r.runq.append(max(0, procs_running() - 1))
            n += 1
            if sample_threads and n % 2 == 0:
                r.threads.append(runnable_threads(p.pid))

    b0 = busy()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd)
    threads = []
    if sample_runq or sample_threads:
        threads.append(threading.Thread(target=sampler, daemon=True))
    if sigint_after is not None:
        def interrupt():
            if not done.wait(sigint_after):
                r.signal_at = time.perf_counter() - t0
                os.kill(p.pid, signal.SIGINT)
        threads.append(threading.Thread(target=interrupt, daemon=True))
    for t in threads:
        t.start()
    # wait4 and not Popen.wait: the rusage of this child alone.
    _, status, ru = os.wait4(p.pid, 0)
    r.wall = time.perf_counter() - t0
    done.set()
    for t in threads:
        t.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    r.rc = p.returncode
    r.cpu = ru.ru_utime + ru.ru_stime
    r.rss_mib = ru.ru_maxrss / 1024.0
    r.other = max(0.0, busy() - b0 - r.cpu)
    if r.signal_at is not None:
        r.drain = r.wall - r.signal_at
    out.close()
    err.close()
    return r


def drop_cache(paths):
    """Ask the kernel to forget the files' pages (they must be clean: syncpipe
    fsyncs what it writes), so that the next read goes to the device."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- --json

def json_lines(path):
    """Every JSON object of a --json stream (lines that do not parse are skipped)."""
    objs = []
    with open(path, errors='replace') as f:
        for line in f:
            line = line.strip()
            if line.startswith('{'):
                try:
                    objs.append(json.loads(line))
                except ValueError:
                    pass
    return objs


def summary(path):
    """The summary line of a --json stream, or {} when there is none."""
    for o in reversed(json_lines(path)):
        if o.get('message_type') == 'summary':
            return o
    return {}


def latency_ms(summ, key, q):
    """A latency_ns percentile ('p50', 'p95', 'p99', 'max', 'mean') in ms,
    or None when the histogram has no samples."""
    h = summ.get('latency_ns', {}).get(key)
    return None if not h else h[q] / 1e6


# ---------------------------------------------------------------- tables

def pct(values, p):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(len(v) * p / 100) - 1))]


def fmt(x, digits=2):
    """A cell: '' for None, floats to `digits` places, the rest as str."""
    if x is None:
        return ''
    if isinstance(x, float):
        return 'nan' if math.isnan(x) else f'{x:.{digits}f}'
    return str(x)


def md_table(headers, rows):
    """Print a markdown table."""
    print('| ' + ' | '.join(headers) + ' |')
    print('|' + '---|' * len(headers))
    for row in rows:
        print('| ' + ' | '.join(str(c).replace('|', '\\|') for c in row) + ' |')


def write_tsv(path, headers, rows):
    with open(path, 'w') as f:
        f.write('\t'.join(headers) + '\n')
        for row in rows:
            f.write('\t'.join(str(c) for c in row) + '\n')


# ---------------------------------------------------------------- SVG

COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']


def _esc(s):
    return str(s).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def _panel(out, top, p, W, PH):
    """One panel at y offset `top`. p: kind ('line' or 'bar'), title,
    xlabel, ylabel, x (category labels), series [(name, [y or None])],
    logx (line: x labels are numbers on a log2 axis), mark ((x index,
    series index, text) circled in red)."""
    L, R, T, B = 70, 170, 24, 42
    x0, x1, y0, y1 = L, W - R, top + T, top + PH - B
    ys = [y for _, vals in p['series'] for y in vals if y is not None]
    ymax = (max(ys) if ys else 1.0) * 1.15 or 1.0
    py = lambda y: y1 - y / ymax * (y1 - y0)
    out.append(f'<text x="{(x0 + x1) / 2}" y="{top + 15}" text-anchor="middle" '
               f'font-weight="bold">{_esc(p["title"])}</text>')
    for i in range(5):
        y = ymax * i / 4
        out.append(f'<line x1="{x0}" y1="{py(y):.1f}" x2="{x1}" y2="{py(y):.1f}" stroke="#ddd"/>')
        lab = f'{y:.0f}' if ymax >= 20 else f'{y:.2g}'
        out.append(f'<text x="{x0 - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{lab}</text>')
    out.append(f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="black"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>')
    cats = p['x']
    n = len(cats)
    if p['kind'] == 'line':
        if p.get('logx'):
            lx = [math.log2(float(c)) for c in cats]
        else:
            lx = list(range(n))
        span = (lx[-1] - lx[0]) or 1.0
        px = lambda i: x0 + 10 + (lx[i] - lx[0]) / span * (x1 - x0 - 20)
    else:
        slot = (x1 - x0) / max(n, 1)
        px = lambda i: x0 + slot * (i + 0.5)
    for i, c in enumerate(cats):
        out.append(f'<text x="{px(i):.1f}" y="{y1 + 16}" text-anchor="middle">{_esc(c)}</text>')
    nser = len(p['series'])
    for si, (name, vals) in enumerate(p['series']):
        col = COLOURS[si % len(COLOURS)]
        if p['kind'] == 'line':
            pts = [(px(i), py(v)) for i, v in enumerate(vals) if v is not None]
            out.append('<polyline points="' + ' '.join(f'{a:.1f},{b:.1f}' for a, b in pts)
                       + f'" fill="none" stroke="{col}" stroke-width="2"/>')
            for a, b in pts:
                out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{col}"/>')
        else:
            bw = (x1 - x0) / max(n, 1) * 0.8 / nser
            for i, v in enumerate(vals):
                if v is None:
                    continue
                bx = px(i) - bw * nser / 2 + bw * si
                out.append(f'<rect x="{bx:.1f}" y="{py(v):.1f}" width="{bw:.1f}" '
                           f'height="{y1 - py(v):.1f}" fill="{col}"/>')
                lab = f'{v:.0f}' if v >= 20 else f'{v:.2g}'
                out.append(f'<text x="{bx + bw / 2:.1f}" y="{py(v) - 3:.1f}" '
                           f'text-anchor="middle" font-size="10">{lab}</text>')
        ly = y0 + 14 + 16 * si
        out.append(f'<rect x="{x1 + 12}" y="{ly - 9}" width="10" height="10" fill="{col}"/>')
        out.append(f'<text x="{x1 + 26}" y="{ly}">{_esc(name)}</text>')
    if p.get('mark'):
        i, si, text = p['mark']
        v = p['series'][si][1][i]
        if v is not None:
            out.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="7" fill="none" '
                       f'stroke="#d62728" stroke-width="2"/>')
            out.append(f'<text x="{px(i) + 10:.1f}" y="{py(v) - 10:.1f}" fill="#d62728">{_esc(text)}</text>')
    out.append(f'<text x="{(x0 + x1) / 2}" y="{top + PH - 8}" text-anchor="middle">{_esc(p["xlabel"])}</text>')
    cy = (y0 + y1) / 2
    out.append(f'<text x="16" y="{cy}" text-anchor="middle" '
               f'transform="rotate(-90 16 {cy})">{_esc(p["ylabel"])}</text>')


def svg_chart(path, panels, note=''):
    """Write panels (see _panel) stacked vertically into an SVG file; `note`
    goes at the bottom (e.g. the date and the machine)."""
    W, PH = 680, 280
    H = PH * len(panels) + (22 if note else 0)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for k, p in enumerate(panels):
        _panel(out, k * PH, p, W, PH)
    if note:
        out.append(f'<text x="8" y="{H - 7}" font-size="10" fill="#555">{_esc(note)}</text>')
    out.append('</svg>')
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


def run_note(extra=''):
    """The plot's footnote: date, cores, what else the machine was doing."""
    load = os.getloadavg()[0]
    s = f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, {os.cpu_count()} cores, load {load:.1f}'
    return s + (f'; {extra}' if extra else '')


# ---------------------------------------------------------------- inputs

def mixed_seed(path, nbytes):
    """NBYTES of real files from /usr (benches/make_mixed.py), made once."""
    if not (os.path.exists(path) and os.path.getsize(path) == nbytes):
        subprocess.run([sys.executable, os.path.join(HERE, 'make_mixed.py'), str(nbytes), path],
                       check=True)
    return path


def repeat_to(src, nbytes, dst):
    """DST = SRC repeated and cut at NBYTES (written to DST.tmp, renamed)."""
    if os.path.exists(dst) and os.path.getsize(dst) == nbytes:
        return dst
    if os.path.getsize(src) == 0:
        raise SystemExit(f'{src} is empty')
    left = nbytes
    with open(dst + '.tmp', 'wb') as o:
        while left:
            with open(src, 'rb') as f:
                while left:
                    b = f.read(min(left, 8 << 20))
                    if not b:
                        break
                    o.write(b)
                    left -= len(b)
    os.rename(dst + '.tmp', dst)
    return dst


def slices(seed, dest_dir, count, lo, hi, rng_seed=1):
    """COUNT files of log-uniform sizes in [lo, hi] bytes, cut from SEED at
    random offsets, in DEST_DIR/dNN/fNNNNNN.bin (100 folders)."""
    import random
    rng = random.Random(rng_seed)
    data = open(seed, 'rb').read()
    for i in range(count):
        size = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        size = min(size, len(data))
        off = rng.randrange(0, len(data) - size + 1)
        d = os.path.join(dest_dir, 'd%02d' % (i % 100))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'f%06d.bin' % i), 'wb') as f:
            f.write(data[off:off + size])


def corpus(dir_):
    """The Linux kernel source (Debian's linux-source-6.1) in DIR:
    DIR/linux-source-6.1.tar (xz -dc of the package's tarball, ~1.3 GB) and
    DIR/linux-tree/ (the tarball extracted, ~78k files). Made once (a
    marker file records completion). Returns (tar, tree) or None when the
    package is not installed."""
    if not os.path.exists(LINUX_XZ):
        return None
    os.makedirs(dir_, exist_ok=True)
    tar = os.path.join(dir_, 'linux-source-6.1.tar')
    tree = os.path.join(dir_, 'linux-tree')
    if not os.path.exists(tar + '.done'):
        sys.stderr.write(f'corpus: xz -dc {LINUX_XZ} > {tar}\n')
        with open(tar + '.tmp', 'wb') as o:
            subprocess.run(['xz', '-dc', '-T0', LINUX_XZ], stdout=o, check=True)
        os.rename(tar + '.tmp', tar)
        open(tar + '.done', 'w').close()
    if not os.path.exists(tree + '.done'):
        sys.stderr.write(f'corpus: extracting {tar} into {tree}\n')
        subprocess.run(['rm', '-rf', tree], check=True)
        os.makedirs(tree)
        subprocess.run(['tar', 'xf', tar, '-C', tree, '--strip-components=1'], check=True)
        open(tree + '.done', 'w').close()
    return tar, tree


def linux_corpus():
    """corpus() in CORPUS_DIR (default /tmp/syncpipe-corpus), or exit with
    how to install the package."""
    got = corpus(os.environ.get('CORPUS_DIR', '/tmp/syncpipe-corpus'))
    if got is None:
        sys.exit(f'CORPUS=linux: {LINUX_XZ} is missing (apt-get install linux-source-6.1)')
    return got


def inputs_needed(dir_, name, *knobs):
    """Inputs are made once per set of knobs: returns None when DIR holds a
    marker NAME.done-KNOBS, else removes older NAME.done-* markers and
    returns the marker's path, to be passed to inputs_made() at the end."""
    key = os.path.join(dir_, f'{name}.done-' + '-'.join(str(k) for k in knobs))
    if os.path.exists(key):
        return None
    for f in os.listdir(dir_):
        if f.startswith(f'{name}.done-'):
            os.remove(os.path.join(dir_, f))
    return key


def inputs_made(key):
    open(key, 'w').close()


def copy_tree_files(tree, dest, limit):
    """The first LIMIT files of TREE (path order) copied under DEST."""
    import shutil
    for src in tree_files(tree, limit):
        dst = os.path.join(dest, os.path.relpath(src, tree))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)


def warm(paths):
    """Read the files once: the page cache holds them for the timed runs."""
    for p in paths:
        with open(p, 'rb') as f:
            while f.read(8 << 20):
                pass


def tree_files(root, limit=None):
    """Regular files under ROOT, sorted by path (the first LIMIT)."""
    files = []
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for fn in sorted(fns):
            p = os.path.join(dp, fn)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(p)
                if limit and len(files) >= limit:
                    return files
    return files


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'corpus':
        got = corpus(sys.argv[2])
        if got is None:
            sys.exit(f'{LINUX_XZ} is missing: apt-get install linux-source-6.1')
        print(got[0])
        print(got[1])
    elif len(sys.argv) == 5 and sys.argv[1] == 'repeat':
        repeat_to(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
