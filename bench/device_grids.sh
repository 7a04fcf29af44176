#!/bin/bash
# Full grids on a lent GPU machine set up by calls 1-4 (bench/device_setup.md), as the end of call 4:
#   source .gpu/b/run.sh && [K=4] [GRIDS="setting5 true_gem"] [COMP=1] [SCORE="setting2 setting3"]
#     [SCORE_EXECUTOR=local] [OVERRIDES='{"model": "mpnet"}'] bash $TREE/bench/device_grids.sh SECONDS
# GRIDS are fine-tuning grids (executor local-gpus:K, one store finetune.sqlite); COMP=1 rescores the
# compression grid in a second process (compression.sqlite), computing the cells whose committed row
# lacks per-question outcomes; SCORE are no-fine-tuning grids (Settings 2, 3, 4, 6) in a third
# (scoring.sqlite, executor SCORE_EXECUTOR). OVERRIDES (JSON) replaces parameters of params/full in
# every grid: '{"model": "mpnet", "method": ["magnitude", "random"]}' is the second scale (the model is
# checked before any grid starts; MPNET=1 at call 4 stages it). Each store starts as the rows of the tree's results/full.sqlite that its
# grids can reach, plus a store of an earlier call carried in .gpu/d/stores/, so no finished cell is
# computed again; it comes back under $OUT: merge it with bench/merge_store.py. Before starting it
# prints each grid's cells to run and projected minutes, after it the rows each store gained.
# It ends only the processes it started, by their process groups, and stops SECONDS after it began.
START=$(date +%s)
fail() { echo "device_grids.sh: $*" >&2; exit 3; }
[[ "${1:-}" =~ ^[0-9]+$ ]] || fail "usage: [K=4] [GRIDS='setting5 true_gem'] [COMP=1] [SCORE='setting2 setting3'] [OVERRIDES=JSON] bash bench/device_grids.sh SECONDS"
LIMIT=$1
[ -n "${GRIDS:-}${COMP:-}${SCORE:-}" ] || fail "nothing to run: set GRIDS (fine-tuning grids), SCORE (scoring grids) and/or COMP=1 (compression rescoring)"
[ -n "${OUT:-}" ] && [ -d "$OUT" ] || fail "OUT is not a folder: run this through the device tool (what it writes under \$OUT comes back)"
TREE=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$TREE/results/full.sqlite" ] || fail "no $TREE/results/full.sqlite: run this script from the working tree sent (bash \$TREE/bench/device_grids.sh)"
[ -f /tmp/jd/call1.done ] || fail "this machine is not set up (call 1 did not run on it, or it was given back): issue calls 1, 2, 3 and 4 back to back, this script at the end of call 4"
[ -f /tmp/jd/call4.done ] && [ -f /tmp/src/jdlib/__init__.py ] && [ -f /tmp/src/.commit ] \
  || fail "no code in /tmp/src: call 4 (source .gpu/b/run.sh) did not run on this machine; run this script at its end"
export JDLIB_GIT_COMMIT; JDLIB_GIT_COMMIT=$(cat /tmp/src/.commit)
export PYTHONPATH=/tmp/src:/tmp/site HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
cd /tmp/src || fail "cannot enter /tmp/src"
python3 -c "import jdlib, torch; assert torch.cuda.is_available(), 'no GPU'" 2>/dev/null \
  || fail "jdlib or a GPU is not available to python3 with PYTHONPATH=$PYTHONPATH: issue calls 1, 2, 3 and 4 back to back"
K=${K:-4}
PGIDS=/tmp/jd/device_grids.pgids  # the process groups this script started (a killed call's, too)
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -q jd_grids.py; }
if [ -f "$PGIDS" ]; then  # an earlier call of this script killed at its limit: end what it started
  for g in $(cat "$PGIDS"); do ours "$g" && kill -- "-$g" 2>/dev/null; done
  rm -f "$PGIDS"
fi

cat > /tmp/jd/jd_grids.py <<'PY'
"""prepare STORE OUTCOMES_ONLY TREE GRID...: check the model, seed the store, count its rows, project the
minutes; run STORE EXECUTOR GRID...: run the grids; report STORE GRID...: the rows each grid gained.
Every grid is params/full's with $OVERRIDES (JSON) replacing its parameters."""
import json, os, sys, time
from pathlib import Path
import jdlib, torch
from jdlib.merge import measured_rate, merge, projection, seed
from jdlib.models import check_model

OVERRIDES = json.loads(os.environ.get("OVERRIDES") or "{}")

# Dask's workers start by spawn, which imports this file again as __mp_main__: nothing may run then
if __name__ == "__main__":
    verb, store, rest = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    counted = Path("/tmp/jd") / f"before_{store.stem}.json"
    if verb == "prepare":
        outcomes_only, tree, grids = rest[0] == "1", Path(rest[1]), rest[2:]
        full = tree / "results/full.sqlite"
        for grid in grids:
            check_model(jdlib.load_config(grid, "full", **OVERRIDES).model)
        print("seeded", seed(full, store, grids, outcomes_only=outcomes_only, overrides=OVERRIDES).summary())
        # a store of an earlier call not merged into results/full.sqlite yet: carried in the tree, or kept on
        # this warm machine by the call before (so calls chained on one machine need no copy in between)
        for carried in (tree / ".gpu/d/stores" / store.name, Path("/tmp/jd/stores") / store.name):
            if carried.exists():
                print("carried", carried, merge(carried, store, skip_different=True).summary())
        device, total, before, unmeasured = torch.cuda.get_device_name(), 0.0, {}, []
        for grid in grids:
            p = projection(grid, "full", store, measured_rate(grid, "full", full, device, OVERRIDES), OVERRIDES)
            before[grid] = p.total - p.to_run
            total += p.minutes or 0.0
            if p.minutes is None and p.to_run:
                unmeasured.append(grid)
            print(p.line())
        counted.write_text(json.dumps(before))
        unknown = f", plus {' '.join(unmeasured)} (no measured rate)" if unmeasured else ""
        print(f"{store.stem}: projected {total:.1f} GPU minutes for {' '.join(g for g in grids if g not in unmeasured) or 'no grid'}"
              f"{unknown} (grids run one after another; each rate holds for the executor it names)")
    elif verb == "run":
        executor, names = rest[0], rest[1:]
        for name in names:
            t = time.time()
            jdlib.sweep(jdlib.load_config(name, "full", **{**OVERRIDES, "store": str(store), "executor": executor}),
                        progress=False)
            print(name, "complete", f"{time.time() - t:.0f} s", flush=True)
    elif verb == "report":
        before = json.loads(counted.read_text())
        for grid in rest:
            p = projection(grid, "full", store, None, OVERRIDES)
            print(f"{grid}: {before[grid]} -> {p.total - p.to_run} of {p.total} cells in {store.name} "
                  f"(+{p.total - p.to_run - before[grid]})")
PY

jobs_to_run=()
if [ -n "${GRIDS:-}" ]; then jobs_to_run+=("finetune|local-gpus:$K|$GRIDS|0"); fi
if [ -n "${COMP:-}" ]; then jobs_to_run+=("compression|local|compression|1"); fi
if [ -n "${SCORE:-}" ]; then jobs_to_run+=("scoring|${SCORE_EXECUTOR:-local}|$SCORE|0"); fi
for job in "${jobs_to_run[@]}"; do
  IFS='|' read -r name executor grids outcomes_only <<< "$job"
  # shellcheck disable=SC2086
  python3 /tmp/jd/jd_grids.py prepare "$OUT/$name.sqlite" "$outcomes_only" "$TREE" $grids 2>&1 | grep -v Warning
  [ "${PIPESTATUS[0]}" = 0 ] || fail "could not seed $OUT/$name.sqlite from $TREE/results/full.sqlite (see above)"
done

LEFT=$(( LIMIT - ($(date +%s) - START) - 40 ))  # 40 s to end the workers and count the rows
[ "$LEFT" -gt 30 ] || fail "too little of the $LIMIT s left to run a grid ($LEFT s): give the call more seconds"
echo "running for at most $LEFT s"
set -m  # each background job in its own process group, ended by its id
pids=()
for job in "${jobs_to_run[@]}"; do
  IFS='|' read -r name executor grids outcomes_only <<< "$job"
  # shellcheck disable=SC2086
  timeout -s INT -k 20 "$LEFT" python3 /tmp/jd/jd_grids.py run "$OUT/$name.sqlite" "$executor" $grids \
    > "$OUT/$name.log" 2>&1 &
  pids+=($!)
  echo $! >> "$PGIDS"
done
end_ours() { for p in "${pids[@]}"; do kill -0 -- "-$p" 2>/dev/null && kill -- "-$p" 2>/dev/null; done; }
trap 'end_ours; exit 130' INT TERM
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
end_ours  # whatever a grid's process left in its group (Dask workers)
rm -f "$PGIDS"
set +m

for job in "${jobs_to_run[@]}"; do
  IFS='|' read -r name executor grids outcomes_only <<< "$job"
  grep -v Warning "$OUT/$name.log" | grep -E "complete|Error" | tail -n 5
  # shellcheck disable=SC2086
  python3 /tmp/jd/jd_grids.py report "$OUT/$name.sqlite" $grids 2>&1 | grep -v Warning
  mkdir -p /tmp/jd/stores && cp "$OUT/$name.sqlite" /tmp/jd/stores/  # the next call on this machine resumes from it
done
echo "elapsed $(( $(date +%s) - START )) s (exit status of the grids: $rc; 124: stopped at the limit, resumable)"
[ "$rc" = 0 ] || [ "$rc" = 124 ] || exit "$rc"
