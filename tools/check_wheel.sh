#!/usr/bin/env bash
# Release check: the built wheel, alone in a clean virtual environment, does
# what an OpenMMLab user does with it. Not part of `make test` (it needs a
# venv with torch, about 6 GB, and a few minutes). Run from the repository:
#
#   tools/check_wheel.sh [VENV [REQUIREMENTS]]
#     VENV default /tmp/figkd_wheel_venv; REQUIREMENTS default
#     requirements.txt (requirements-lowest.txt: setup.py's lower bounds)
#
# 1. builds an sdist from the tracked and new files, and the wheel from that
#    sdist (so MANIFEST.in is checked too);
# 2. creates VENV if it does not exist, with REQUIREMENTS and
#    requirements-mim.txt (openmim), installs the wheel, and runs `pip check`;
# 3. from a folder outside the repository: measures the start-up cost of the
#    import hook (figkd_mmrazor_hook.pth), runs `mim search figkd_mmrazor`,
#    `mim train figkd_mmrazor`, `mim train mmrazor` and `mim train
#    mmpretrain` on a one-epoch demo run with generated data, and checks
#    that `pip uninstall` removes the .pth file.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-/tmp/figkd_wheel_venv}"
REQUIREMENTS="$(realpath "${2:-$REPO/requirements.txt}")"
PY="$VENV/bin/python"
WORK="$(mktemp -d /tmp/figkd_check_wheel.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1
unset PYTHONPATH

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

step "build the sdist and, from it, the wheel"
BUILD_PY="${BUILD_PY:-$REPO/.venv/bin/python}"
mkdir "$WORK/src" "$WORK/dist"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -I{} sh -c 'test -e "{}" && cp --parents -P "{}" "$0"' "$WORK/src")
(cd "$WORK/src" && "$BUILD_PY" setup.py -q sdist -d "$WORK/dist" >/dev/null)
"$BUILD_PY" -m pip wheel -q --no-deps --no-build-isolation \
    "$WORK"/dist/figkd_mmrazor-*.tar.gz -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/figkd_mmrazor-*.whl)"
echo "$WHEEL"
"$BUILD_PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for needed in ('figkd_mmrazor_hook.pth', 'figkd_mmrazor_hook.py',
               'figkd_mmrazor/.mim/model-index.yml',
               'figkd_mmrazor/.mim/configs/figkd/metafile.yml',
               'figkd_mmrazor/.mim/configs/demo/figkd.py',
               'figkd_mmrazor/.mim/tools/train.py',
               'figkd_mmrazor/.mim/docs/errors.md'):
    assert needed in names, f'{needed} is not in the wheel'
print(len(names), 'files in the wheel; hook, configs, tools and index present')
EOF

step "clean venv $VENV"
if [ ! -x "$PY" ]; then
    python3.11 -m venv "$VENV"
    "$PY" -m pip install -q -r "$REQUIREMENTS"
fi
"$PY" -m pip install -q -r "$REPO/requirements-mim.txt"
"$PY" -m pip install -q --force-reinstall --no-deps "$WHEEL"
"$PY" -m pip check
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
test -f "$SITE/figkd_mmrazor_hook.pth" || fail "no .pth in $SITE"
cd "$WORK"  # nothing of the repository on the path from here on

step "start-up: nothing heavy imported, cost of the hook"
"$PY" -c 'import sys
assert any(type(f).__name__ == "MMRazorQuantizationFinder" for f in sys.meta_path)
heavy = [m for m in ("torch", "numpy", "mmrazor", "figkd_mmrazor") if m in sys.modules]
assert not heavy, heavy
print("finder installed; none of torch, numpy, mmrazor, figkd_mmrazor imported")'
"$PY" -X importtime -c pass 2>&1 | grep -E 'figkd_mmrazor_hook|\| site$' || true
# Wall time of `python -c pass` with and without the .pth, interleaved.
"$PY" - "$PY" "$SITE/figkd_mmrazor_hook.pth" <<'EOF'
import os, statistics, subprocess, sys, time
python, pth = sys.argv[1:]
times = {True: [], False: []}
try:
    for _ in range(30):
        for with_hook in (True, False):
            if not with_hook:
                os.rename(pth, pth + '.off')
            start = time.perf_counter()
            subprocess.run([python, '-c', 'pass'], check=True)
            times[with_hook].append(time.perf_counter() - start)
            if not with_hook:
                os.rename(pth + '.off', pth)
finally:
    if os.path.exists(pth + '.off'):
        os.rename(pth + '.off', pth)
on, off = (statistics.median(times[k]) * 1000 for k in (True, False))
print(f'python -c pass, median of 30: {on:.1f} ms with the hook, '
      f'{off:.1f} ms without: {on - off:+.1f} ms')
EOF

step "mim search figkd_mmrazor"
"$VENV/bin/mim" search figkd_mmrazor > search.txt
cat search.txt
grep -q 'cub_r50_r18' search.txt || fail "mim search lists no recipe"

step "tiny demo data"
"$PY" -c 'from figkd_mmrazor.demo import make_demo_cub
make_demo_cub("data/demo_cub", train_per_class=2, test_per_class=1,
              progress=False)'
CONFIG="$SITE/figkd_mmrazor/.mim/configs/demo/figkd.py"
TINY=(--cfg-options model.teacher_ckpt=None train_cfg.max_epochs=1
      train_cfg.val_interval=1)

# mim finds a config by file name only where the name is unique in the
# package (configs/demo/figkd.py shares it with _base_/distill/figkd.py).
step "mim train figkd_mmrazor $CONFIG"
"$VENV/bin/mim" train figkd_mmrazor "$CONFIG" --work-dir work_figkd \
    "${TINY[@]}" > train_figkd.log 2>&1 || { tail -40 train_figkd.log; fail "mim train figkd_mmrazor"; }
grep -m1 'distill.loss_figkd' train_figkd.log
test -f work_figkd/epoch_1.pth || fail "no checkpoint from mim train figkd_mmrazor"

step "mim train mmrazor $CONFIG"
"$VENV/bin/mim" train mmrazor "$CONFIG" --work-dir work_mmrazor \
    "${TINY[@]}" > train_mmrazor.log 2>&1 || { tail -40 train_mmrazor.log; fail "mim train mmrazor"; }
grep -m1 'distill.loss_figkd' train_mmrazor.log
test -f work_mmrazor/epoch_1.pth || fail "no checkpoint from mim train mmrazor"

step "mim train mmpretrain $CONFIG"
"$VENV/bin/mim" train mmpretrain "$CONFIG" --work-dir work_mmpretrain \
    "${TINY[@]}" > train_mmpretrain.log 2>&1 || { tail -40 train_mmpretrain.log; fail "mim train mmpretrain"; }
grep -m1 'distill.loss_figkd' train_mmpretrain.log
test -f work_mmpretrain/epoch_1.pth || fail "no checkpoint from mim train mmpretrain"

step "pip uninstall removes the hook"
"$PY" -m pip uninstall -q -y figkd_mmrazor
test ! -e "$SITE/figkd_mmrazor_hook.pth" || fail ".pth left after uninstall"
test ! -e "$SITE/figkd_mmrazor_hook.py" || fail "hook module left after uninstall"
"$PY" -c 'import sys; assert not any(type(f).__name__ == "MMRazorQuantizationFinder" for f in sys.meta_path)'
echo "figkd_mmrazor_hook.pth and .py removed; a new interpreter has no finder"
"$PY" -m pip install -q --no-deps "$WHEEL"  # leave the venv as it was

step "all checks passed"
