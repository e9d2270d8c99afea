#!/usr/bin/env bash
# A site board end to end, without real data: a fresh draw of the simulator stands in for a
# site's trials. It is written as DICOM (CT series, RTSTRUCT, clinical table), imported as the
# site would import its own, evaluated with every model, exported as an aggregate-only site
# record and registered on the leaderboard (docs/sites.md). Run from anywhere.
#
#   scripts/example_site.sh                                   # every model, seeds 0 1 2
#   MODELS="rf_radiomics rsf_clinical" scripts/example_site.sh
#
# Settings (environment): PROFILE (default "default") and DATA_SEED (default 101: not the public
# seed 0), DATASET (the site dataset's name, default example_site), MODELS (default: every
# ranked model), SEEDS (default "0 1 2"), WORK (the site's folder: DICOM, private layout, runs,
# export; default outputs/example_site), PY (default .venv/bin/python); for a smoke test: BOARD
# (leaderboard folder, default leaderboard) and DATA (its conf/data option, default "default").
# Re-running resumes: finished steps and runs are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
PROFILE=${PROFILE:-default}
DATA_SEED=${DATA_SEED:-101}
DATASET=${DATASET:-example_site}
SEEDS=${SEEDS:-"0 1 2"}
WORK=${WORK:-outputs/example_site}
BOARD=${BOARD:-leaderboard}
DATA=${DATA:-default}

if [ ! -d "$WORK/dicom" ]; then
  # The draw's layout (with the simulator's truth) exists only to be written as DICOM.
  rm -rf "$WORK/drawn"
  "$PY" -m benchmark.data simulate --profile "$PROFILE" --seed "$DATA_SEED" "$WORK/drawn"
  "$PY" -m benchmark.data export-dicom "$WORK/drawn" "$WORK/dicom"  # all or nothing
  rm -rf "$WORK/drawn"
fi
# From here on, only what a site holds: DICOM files and a clinical table.
if [ ! -d "$WORK/private" ]; then
  "$PY" -m benchmark.data import-dicom "$WORK/dicom" --manifest "$WORK/dicom/manifest_rtstruct.csv" \
    --clinical "$WORK/dicom/clinical.csv" "$WORK/private"
fi
# shellcheck disable=SC2086  # MODELS and SEEDS are word lists
"$PY" -m benchmark.site evaluate --dataset "$DATASET" --out "$WORK/runs" \
  ${MODELS:+--models $MODELS} --seeds $SEEDS data=folder "data.root=$(realpath "$WORK/private")"
"$PY" -m benchmark.site export --dataset "$DATASET" --runs "$WORK/runs" "$WORK/export"
"$PY" -m benchmark.site register "$WORK/export/$DATASET.json" --root "$BOARD" \
  --holder "nobody: simulated (profile $PROFILE, data seed $DATA_SEED)" \
  --description "A fresh draw of the simulator, round-tripped through DICOM (RTSTRUCT) and imported as a site would: the worked example of docs/sites.md."
"$PY" -m benchmark.leaderboard --root "$BOARD" --data "$DATA"
