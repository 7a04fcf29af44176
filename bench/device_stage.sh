#!/bin/bash
# Device setup, call 1 of 2 (carry .gpu/a; copy this file to .gpu/a/stage.sh): install the carried wheels into /tmp/site and stage the
# first half of the MiniLM weights in /tmp/jd. Both stay only while the machine is warm (30 s).
set -e
mkdir -p /tmp/jd /tmp/site
cp .gpu/a/minilm.xz.aa /tmp/jd/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/a/wheels/*.whl
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python3 -c "
import sys, torch, transformers, datasets, tokenizers, dask, distributed, pyarrow, pandas, numpy, fsspec, accelerate
print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())
print({m.__name__: m.__version__ for m in (transformers, datasets, tokenizers, dask, distributed, pyarrow, pandas, numpy, fsspec, accelerate)})"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv
