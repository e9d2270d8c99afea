#!/usr/bin/env bash
# Rebuild the committed leaderboard: every ranked model x the board's seeds (leaderboard/board.yaml:
# 0 1 2) on the default simulated cohorts, two runs at a time on CPU, each run submitted to
# leaderboard/results/, then the table and figures regenerated and checked. Prints each run's
# wall time as it ends and, at the end, every run's time and the total wall time. Run from
# anywhere; it works in the repository root.
#
#   scripts/leaderboard_runs.sh                                  # every model, CPU preset
#   MODELS="rf_radiomics hgb_radiomics_clinical" scripts/leaderboard_runs.sh
#   HARDWARE=gpu MODELS="cnn3d timm25d_resnet18" scripts/leaderboard_runs.sh   # deep models, GPU
#   FRESH=1 scripts/leaderboard_runs.sh       # drop leaderboard/results first (data/protocol changed)
#   SUBMIT=0 SEEDS=0 MODELS="cnn3d timm25d_resnet18" OUT=/tmp/timing scripts/leaderboard_runs.sh
#                                             # time runs only: nothing submitted, no board
#   NSCLC_IO_BENCH_CACHE=$(mktemp -d) scripts/leaderboard_runs.sh   # the whole board, empty cache
#
# Settings (environment): MODELS (default: every baseline and submission except templates,
# fast models first), SEEDS (default: those leaderboard/board.yaml declares), HARDWARE (cpu | gpu),
# JOBS (runs at a time: 2 on cpu, 1 on gpu), OUT (run folders, default outputs/leaderboard),
# PY (default .venv/bin/python), SUBMIT (1: submit and rebuild the board, the default; 0: only
# run and time); for a smoke test only: DATA
# (default "default") and BOARD (the leaderboard folder, default leaderboard), e.g.
# DATA=tiny BOARD=/tmp/board MODELS=cox_clinical SEEDS=0 scripts/leaderboard_runs.sh
#
# Each run goes to $OUT/<model>/seed<k>; a finished run is not recomputed (benchmark.runner.run keeps a
# folder's complete record of the same config and data), so an interrupted script resumes where
# it stopped; such a run is timed as "reused" (use a fresh OUT to time every run). The cache is
# paths.cache_dir ($NSCLC_IO_BENCH_CACHE, or .cache/): the script says whether it started empty.
# A failed run is reported at once and at the end (exit status 1); the other runs still run and
# are submitted.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-$("$PY" -c '
from benchmark.leaderboard.checks import load_seeds
seeds, problems = load_seeds("leaderboard/board.yaml")
if problems or not seeds:
    raise SystemExit("leaderboard/board.yaml declares no seeds: set SEEDS")
print(*seeds)
')}
HARDWARE=${HARDWARE:-cpu}
# Runs at a time. Two on CPU: each run trains on one torch thread (conf/hardware/cpu.yaml), and
# two at a time give the same records (CI's verify --jobs 2 re-trains them to the bit) at about
# 1.2-1.5x the throughput of one on 2 cores (timm25d_resnet18: 331 s alone, 556 s two at a
# time). One on a GPU, which a second run would share.
JOBS=${JOBS:-$([[ "$HARDWARE" == gpu ]] && echo 1 || echo 2)}
OUT=${OUT:-outputs/leaderboard}
DATA=${DATA:-default}
BOARD=${BOARD:-leaderboard}
SUBMIT=${SUBMIT:-1}
LEADERBOARD=("$PY" -m benchmark.leaderboard --root "$BOARD" --data "$DATA")
# The script rebuilds the board: its runs replace the records there. A scratch board (the smoke
# test) takes runs of uncommitted code; leaderboard/ never does (submit refuses them).
SUBMIT_FLAGS=(--replace)
[[ "$(realpath -m "$BOARD")" != "$(realpath -m leaderboard)" ]] && SUBMIT_FLAGS+=(--allow-dirty)
if [[ -z "${MODELS:-}" ]]; then
  MODELS=$("$PY" -c '
from benchmark.records.catalog import discover
ranked = [e for e in discover() if e.on_leaderboard]
print(" ".join(e.name for e in sorted(ranked, key=lambda e: (e.deep, e.name))))
') || { echo "cannot list the models" >&2; exit 2; }
fi

if [[ "${FRESH:-0}" == 1 ]]; then
  echo "FRESH=1: removing the records in $BOARD/results/"
  rm -f "$BOARD"/results/*.json "$BOARD"/results/*.predictions.csv.gz
fi

cache=${NSCLC_IO_BENCH_CACHE:-.cache}
if [[ -d "$cache" ]] && [[ -n "$(ls -A "$cache" 2>/dev/null)" ]]; then
  cache_state="holds entries (warm or partly warm)"
else
  cache_state="empty"
fi
echo "models: $MODELS"
echo "seeds: $SEEDS, data: $DATA, hardware: $HARDWARE, runs in $OUT, leaderboard in $BOARD"
echo "cache: $cache ($cache_state at the start); $(nproc) CPUs; $(date -u +%FT%TZ)"
failed=()
declare -A model_s=() model_runs=()
times="$OUT/.times"
mkdir -p "$times"

# One run; writes its wall seconds (or "failed") to $times/<model>.seed<k> for the summary.
run_one() {
  local model=$1 seed=$2 dir="$OUT/$1/seed$2" start took
  start=$(date +%s)
  mkdir -p "$dir"
  if "$PY" -m benchmark "model=$model" "seed=$seed" "data=$DATA" "hardware=$HARDWARE" \
      "hydra.run.dir=$dir" >"$dir/run.log" 2>&1; then
    took=$(($(date +%s) - start))
    echo "$took" >"$times/$model.seed$seed"
    echo "   $model seed $seed: $took s"
  else
    echo failed >"$times/$model.seed$seed"
    echo "!! $model seed $seed: the run failed; last lines of $dir/run.log:" >&2
    tail -n 15 "$dir/run.log" >&2
  fi
}

began=$SECONDS
for model in $MODELS; do
  for seed in $SEEDS; do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
    echo "== $model seed $seed"
    run_one "$model" "$seed" &
  done
done
wait

# Submit in the board's order, one at a time (each submit rewrites the shared oracle file).
for model in $MODELS; do
  for seed in $SEEDS; do
    dir="$OUT/$model/seed$seed"
    took=$(cat "$times/$model.seed$seed" 2>/dev/null || echo failed)
    if [[ "$took" == failed ]]; then
      failed+=("$model seed $seed (run)")
      continue
    fi
    state=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["state"])' \
      "$dir/status.json" 2>/dev/null || echo "?")
    label="$took s"
    [[ "$state" == skipped ]] && label="$took s (reused: a finished run in $dir)"
    model_s[$model]=$(( ${model_s[$model]:-0} + took ))
    model_runs[$model]="${model_runs[$model]:-}${model_runs[$model]:+, }$label"
    if [[ "$SUBMIT" == 1 ]] && ! "${LEADERBOARD[@]}" submit "${SUBMIT_FLAGS[@]}" "$dir"; then
      echo "!! $model seed $seed: refused by the leaderboard (above)" >&2
      failed+=("$model seed $seed (submit)")
    fi
  done
done

board_s=0
if [[ "$SUBMIT" == 1 ]]; then
  echo "== leaderboard"
  start=$SECONDS
  if ! "${LEADERBOARD[@]}" || ! "${LEADERBOARD[@]}" check; then
    failed+=("leaderboard build")
  fi
  board_s=$((SECONDS - start))
fi

echo
echo "wall time per run (seeds: $SEEDS; hardware=$HARDWARE; $JOBS at a time; cache $cache_state at the start)"
printf '%-28s %8s  %s\n' model "sum s" "per seed"
for model in $MODELS; do
  printf '%-28s %8s  %s\n' "$model" "${model_s[$model]:--}" "${model_runs[$model]:-failed}"
done
[[ "$SUBMIT" == 1 ]] && printf '%-28s %8s\n' "(board: build + check)" "$board_s"
total=$((SECONDS - began))  # runs, submissions and the board
printf '%-28s %8s  (%d min %02d s, wall)\n' "total" "$total" $((total / 60)) $((total % 60))

if ((${#failed[@]})); then
  echo "FAILED (${#failed[@]}):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
if [[ "$SUBMIT" == 1 ]]; then
  echo "done: commit $BOARD/ (results/*.json, results/*.predictions.csv.gz, README.md, figures/)"
fi
