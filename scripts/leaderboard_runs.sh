#!/usr/bin/env bash
# Rebuild the committed leaderboard: every ranked model x seeds 0 1 2 on the default simulated
# cohorts, each run submitted to leaderboard/results/, then the table and figures regenerated
# and checked. Run from anywhere; it works in the repository root.
#
#   scripts/leaderboard_runs.sh                                  # every model, CPU preset
#   MODELS="rf_radiomics hgb_radiomics_clinical" scripts/leaderboard_runs.sh
#   HARDWARE=gpu MODELS="cnn3d timm25d_resnet18" scripts/leaderboard_runs.sh   # deep models, GPU
#   FRESH=1 scripts/leaderboard_runs.sh       # drop leaderboard/results first (data/protocol changed)
#
# Settings (environment): MODELS (default: every baseline and submission except templates,
# fast models first), SEEDS (default "0 1 2"), HARDWARE (cpu | gpu),
# OUT (run folders, default outputs/leaderboard), PY (default .venv/bin/python); for a smoke
# test only: DATA (default "default") and BOARD (the leaderboard folder, default leaderboard),
# e.g. DATA=tiny BOARD=/tmp/board MODELS=cox_clinical SEEDS=0 scripts/leaderboard_runs.sh
#
# Each run goes to $OUT/<model>/seed<k>; a finished run is not recomputed (benchmark.run keeps a
# folder's complete record of the same config and data), so an interrupted script resumes where
# it stopped. A failed run is reported at once and at the end (exit status 1); the other runs
# still run and are submitted.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-"0 1 2"}
HARDWARE=${HARDWARE:-cpu}
OUT=${OUT:-outputs/leaderboard}
DATA=${DATA:-default}
BOARD=${BOARD:-leaderboard}
LEADERBOARD=("$PY" -m benchmark.leaderboard --root "$BOARD" --data "$DATA")
if [[ -z "${MODELS:-}" ]]; then
  MODELS=$("$PY" -c '
from benchmark.catalog import discover
ranked = [e for e in discover() if e.on_leaderboard]
print(" ".join(e.name for e in sorted(ranked, key=lambda e: (e.deep, e.name))))
') || { echo "cannot list the models" >&2; exit 2; }
fi

if [[ "${FRESH:-0}" == 1 ]]; then
  echo "FRESH=1: removing the records in $BOARD/results/"
  rm -f "$BOARD"/results/*.json "$BOARD"/results/*.predictions.csv.gz
fi

echo "models: $MODELS"
echo "seeds: $SEEDS, data: $DATA, hardware: $HARDWARE, runs in $OUT, leaderboard in $BOARD"
failed=()
for model in $MODELS; do
  for seed in $SEEDS; do
    dir="$OUT/$model/seed$seed"
    mkdir -p "$dir"
    start=$SECONDS
    echo "== $model seed $seed"
    if ! "$PY" -m benchmark "model=$model" "seed=$seed" "data=$DATA" "hardware=$HARDWARE" \
        "hydra.run.dir=$dir" >"$dir/run.log" 2>&1; then
      echo "!! $model seed $seed: the run failed; last lines of $dir/run.log:" >&2
      tail -n 15 "$dir/run.log" >&2
      failed+=("$model seed $seed (run)")
      continue
    fi
    if ! "${LEADERBOARD[@]}" submit "$dir"; then
      echo "!! $model seed $seed: refused by the leaderboard (above)" >&2
      failed+=("$model seed $seed (submit)")
      continue
    fi
    echo "   $((SECONDS - start)) s"
  done
done

echo "== leaderboard"
if ! "${LEADERBOARD[@]}" || ! "${LEADERBOARD[@]}" check; then
  failed+=("leaderboard build")
fi

if ((${#failed[@]})); then
  echo "FAILED (${#failed[@]}):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "done: commit $BOARD/ (results/*.json, results/*.predictions.csv.gz, README.md, figures/)"
