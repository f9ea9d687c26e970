#!/usr/bin/env bash
# Runs one `surge` command twice, natively and under QEMU's user-mode emulation of an AVX2 CPU
# without AVX-512 (Haswell), and compares every file the two runs write, byte for byte, except
# wall-clock fields. Surge's results should not depend on which x86-64 kernels a machine selects;
# this checks it on a machine of the other kind. Emulation is 200-1000x slower: keep runs small.
#
#   scripts/avx2_check.sh OUT_ARG_NAME -- surge-args...
#   scripts/avx2_check.sh --out -- optimize --config tiny.toml --checkpoint checkpoints/lif-default
#
# Needs `qemu-x86_64` (Debian: qemu-user) and a release build (CARGO_TARGET_DIR honoured).
set -euo pipefail
out_flag="$1"; shift
[ "$1" = "--" ] && shift
bin="${CARGO_TARGET_DIR:-target}/release/surge"
command -v qemu-x86_64 >/dev/null || { echo "qemu-x86_64 missing. Fix: apt-get install qemu-user" >&2; exit 2; }
[ -x "$bin" ] || { echo "$bin missing. Fix: cargo build --release" >&2; exit 2; }
work="$(mktemp -d)"
echo "native:   $bin $* $out_flag $work/native"
"$bin" "$@" "$out_flag" "$work/native" >"$work/native.log" 2>&1
echo "emulated: qemu-x86_64 -cpu Haswell-v4 (AVX2 and FMA, no AVX-512) ..."
qemu-x86_64 -cpu Haswell-v4 "$bin" "$@" "$out_flag" "$work/haswell" >"$work/haswell.log" 2>&1
python3 - "$work/native" "$work/haswell" <<'PY'
import json, pathlib, sys
a, b = map(pathlib.Path, sys.argv[1:])
def clean(v):
    # Wall-clock times differ by design; everything else must not.
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if "wall" not in k and k not in ("seconds", "elapsed_s")}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v
files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
differ = []
for f in files:
    x, y = a / f, b / f
    if not y.exists():
        differ.append(f"{f}: missing under emulation")
    elif f.suffix == ".json":
        if clean(json.loads(x.read_text())) != clean(json.loads(y.read_text())):
            differ.append(str(f))
    elif f.suffix == ".h5":
        import h5py, numpy as np
        def flat(path):
            out = {}
            with h5py.File(path, "r") as h:
                def visit(name, obj):
                    if isinstance(obj, h5py.Dataset):
                        out[name] = obj[()]
                    for k, v in obj.attrs.items():
                        if "wall" not in k:
                            out[f"{name}@{k}"] = v
                h.visititems(visit)
                for k, v in h.attrs.items():
                    if "wall" not in k:
                        out[f"@{k}"] = v
            return out
        p, q = flat(x), flat(y)
        if p.keys() != q.keys() or any(not np.array_equal(p[k], q[k]) for k in p):
            differ.append(str(f))
    elif f.suffix in (".png", ".svg"):
        continue  # figures are drawn from the compared data
    elif x.read_bytes() != y.read_bytes():
        differ.append(str(f))
print(f"{len(files)} files compared, {len(differ)} differ" + ("".join("\n  " + d for d in differ)))
sys.exit(1 if differ else 0)
PY
