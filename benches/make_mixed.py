"""make_mixed.py BYTES DEST: the benchmarks' mixed input.

BYTES bytes of regular files (1 KiB to 16 MiB each) from /usr/share,
/usr/lib and /usr/bin, concatenated in md5(path) order and cut at BYTES:
the peers' recipe, so machines with the same packages get the same file
byte for byte (compare its sha256), and a shorter one is a prefix of a
longer one. Written to DEST.tmp, then renamed.
"""
import hashlib, os, stat, sys

limit, dest = int(sys.argv[1]), sys.argv[2]
files = []
for root in ('/usr/share', '/usr/lib', '/usr/bin'):
    for dp, dns, fns in os.walk(root):
        dns.sort()
        for fn in fns:
            p = os.path.join(dp, fn)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and 1024 <= st.st_size <= 16 * 1024 * 1024:
                files.append(p)
files.sort(key=lambda p: hashlib.md5(p.encode()).hexdigest())
n = used = 0
with open(dest + '.tmp', 'wb') as out:
    for p in files:
        if n >= limit:
            break
        try:
            with open(p, 'rb') as f:
                data = f.read(limit - n)
        except OSError:
            continue
        out.write(data); n += len(data); used += 1
os.rename(dest + '.tmp', dest)
if n < limit:
    print(f'warning: only {n} bytes of candidate files (asked for {limit})', file=sys.stderr)
print(f'{dest}: {n} bytes from {used} of {len(files)} candidate files', file=sys.stderr)
