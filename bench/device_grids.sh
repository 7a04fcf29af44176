#!/bin/bash
# Full grids on a warm lent GPU machine set up by device_stage.sh and device_run.sh (code in
# /tmp/src, packages in /tmp/site). Run from the tree sent, with the stores of earlier calls
# carried in .gpu/d/stores (they resume):
#   [K=4] [GRIDS="setting5 true_gem"] [COMP=1] bash bench/device_grids.sh SECONDS
# GRIDS are fine-tuning grids (executor local-gpus:K, one store finetune.sqlite); COMP=1 also
# rescores the compression grid in a second process (compression.sqlite). Every store comes back
# under $OUT; merge it here with the rows' provenance and outcomes (device_setup.md).
LIMIT=$1; START=$(date +%s)
export JDLIB_GIT_COMMIT=$(cat /tmp/src/.commit 2>/dev/null || cat .gpu/b/commit)
echo "$JDLIB_GIT_COMMIT" > /tmp/src/.commit
export PYTHONPATH=/tmp/src:/tmp/site HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
pkill -f "distributed|run_grids" 2>/dev/null; sleep 1  # workers a killed call left behind
cp .gpu/d/stores/*.sqlite "$OUT"/ 2>/dev/null
cd /tmp/src
cat > /tmp/run_grids.py <<'PY'
import sys, time
import jdlib
if __name__ == "__main__":
    store, executor, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    for name in names:
        t = time.time()
        rows = jdlib.sweep(jdlib.load_config(name, "full", store=store, executor=executor), progress=False)
        print(name, len(rows) if hasattr(rows, "__len__") else "", f"{time.time() - t:.0f} s", flush=True)
PY
LEFT=$(( LIMIT - ($(date +%s) - START) - 25 ))
[ -n "$COMP" ] && timeout -s INT -k 15 $LEFT python3 /tmp/run_grids.py "$OUT/compression.sqlite" local compression \
  > "$OUT/compression.log" 2>&1 &
[ -n "$GRIDS" ] && timeout -s INT -k 15 $LEFT python3 /tmp/run_grids.py "$OUT/finetune.sqlite" "local-gpus:${K:-4}" $GRIDS \
  > "$OUT/finetune.log" 2>&1 &
wait
pkill -f distributed
grep -hv Warning "$OUT"/*.log | grep -E "^(setting|true_gem|lmc|compression) " | tail -n 6
python3 - <<'PY'
import glob, os, sqlite3
for path in sorted(glob.glob(os.environ["OUT"] + "/*.sqlite")):
    db = sqlite3.connect(path)
    print(os.path.basename(path), db.execute("SELECT setting, count(*) FROM cells GROUP BY setting").fetchall(),
          "outcomes", db.execute("SELECT count(*) FROM outcomes").fetchone()[0])
PY
echo "elapsed $(( $(date +%s) - START )) s"
