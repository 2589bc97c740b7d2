# format_inputs.sh: sourced by zst_format.sh and gz_format.sh. Prints the
# machine line and cuts each input to its first SIZE_MB MiB under DIR/SUB
# (kept for the next run), printing its size and sha256 prefix; leaves the
# cut files in the array `inputs`.
#
# Needs: DIR, SUB, SIZE_MB; INPUTS (default "mixed.bin linux-6.1-512MiB.tar",
# made as compare.sh and chunk_goal.sh say).
mkdir -p "$DIR/$SUB"
echo "# $(date -u +%F) $(uname -m), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
inputs=()
for f in ${INPUTS:-mixed.bin linux-6.1-512MiB.tar}; do
    [ -f "$DIR/$f" ] || { echo "$(basename "$0"): $DIR/$f is missing" >&2; exit 2; }
    cut="$DIR/$SUB/$f.${SIZE_MB}M"
    [ -f "$cut" ] || head -c $((SIZE_MB << 20)) "$DIR/$f" >"$cut"
    echo "# input $cut: $(stat -c %s "$cut") bytes, sha256 $(sha256sum "$cut" | cut -c1-16)…"
    inputs+=("$cut")
done
