#!/usr/bin/env bash
# Throughput records for the board: every ranked model on this machine, on the default cohorts,
# each record copied to leaderboard/throughput/ under the name the run prints, then the board
# regenerated. Run on an otherwise idle machine (the README of leaderboard/throughput/ says why).
#
#   scripts/throughput_runs.sh                                     # every model, CPU preset
#   MODELS="cnn3d timm25d_resnet18" HARDWARE=gpu scripts/throughput_runs.sh
#
# Settings (environment): MODELS (default: every baseline and submission except templates),
# HARDWARE (cpu | gpu), OUT (run folders, default outputs/throughput-board), PY (default
# .venv/bin/python), ARGS (extra overrides for every model, e.g. "throughput.batch_sizes=[1,32]").
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
HARDWARE=${HARDWARE:-cpu}
OUT=${OUT:-outputs/throughput-board}
ARGS=${ARGS:-}
if [[ -z "${MODELS:-}" ]]; then
  MODELS=$("$PY" -c '
from benchmark.records.catalog import discover
print(" ".join(sorted(e.name for e in discover() if e.on_leaderboard)))
') || { echo "cannot list the models" >&2; exit 2; }
fi

failed=()
for model in $MODELS; do
  dir="$OUT/$model"
  rm -rf "$dir" && mkdir -p "$dir"
  start=$SECONDS
  echo "== $model"
  # shellcheck disable=SC2086  # ARGS is a list of overrides
  if ! "$PY" -m benchmark.throughput "model=$model" "hardware=$HARDWARE" $ARGS \
      "hydra.run.dir=$dir" >"$dir/run.log" 2>&1; then
    echo "!! $model: failed; last lines of $dir/run.log:" >&2
    tail -n 15 "$dir/run.log" >&2
    failed+=("$model")
    continue
  fi
  name=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["suggested_name"])' \
    "$dir/throughput.json")
  cp "$dir/throughput.json" "leaderboard/throughput/$name"
  echo "   $((SECONDS - start)) s -> leaderboard/throughput/$name"
done

"$PY" -m benchmark.leaderboard || failed+=("leaderboard")
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
