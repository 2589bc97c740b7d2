"""format_rounds.py: what the standard-format scripts (zst_format.sh,
gz_format.sh) share: shell commands timed in interleaved rounds, so that a
slow moment of the machine falls on every row alike, and the table.

    rows = run_rounds(commands, rounds, size)
        commands: {key: (shell command, output file or None)}, in the order
        a round runs them; every command runs once untimed first (a warm-up,
        and the files the restores read). Returns {key: (median MB/s,
        output bytes or None)}; MB/s is `size` bytes / 1e6 / seconds.
    print_table(rows, sizes)
        keys are (input name, level, command); sizes {input name: bytes}.
Standard library only.
"""
import os
import statistics
import subprocess
import time


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, executable='/bin/bash')
    return time.perf_counter() - start


def run_rounds(commands, rounds, size):
    for cmd, _ in commands.values():
        timed(cmd)
    times = {k: [] for k in commands}
    for _ in range(rounds):
        for k, (cmd, _) in commands.items():
            times[k].append(timed(cmd))
    rows = {}
    for k, (_, out) in commands.items():
        out_bytes = os.path.getsize(out) if out else None
        rows[k] = (size / 1e6 / statistics.median(times[k]), out_bytes)
    return rows


def print_table(rows, sizes):
    print(f"\n{'input':<28} {'level':>5} {'command':<16} {'MB/s':>8} {'bytes out':>12} {'ratio':>7}")
    for (name, lv, what), (mbs, out_bytes) in rows.items():
        ob = f'{out_bytes:>12}' if out_bytes else f"{'':>12}"
        ratio = f'{sizes[name] / out_bytes:>7.3f}' if out_bytes else f"{'':>7}"
        print(f'{name:<28} {lv:>5} {what:<16} {mbs:>8.0f} {ob} {ratio}')
    print()
