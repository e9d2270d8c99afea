#!/usr/bin/env bash
# The one prepared GPU check (H100/H200, about 8 minutes; every output under $OUT):
#   a) python -m benchmark.throughput sweeps, hardware=gpu: cnn3d (model-only + the training
#      scope: samples/s with augmentation on the GPU against without, issue 27 + end-to-end with
#      the crop cache cold and warm), timm25d_resnet18 and timm25d_convnext_atto (warm e2e);
#   b) python -m benchmark model=cnn3d hardware=gpu on the default simulated cohorts, under
#      /usr/bin/time -v (its wall time), with a crop cache of its own (cold, as a first run),
#      given all the time the sweeps left (at most 330 s);
#   then, if time is still left, torch.compile rows for cnn3d.
# Steps are independent: each has its own time limit and log, one failing never loses the
# others' files, and the logs are packed at exit whatever happened.
#
# Run from the repository root, with the packages bundle (scripts/gpu_bundle.sh) carried:
#   run(command="bash scripts/gpu_check.sh", carry=[".whl"], timeout_s=570)
# Files back in $OUT (at most 7): summary.txt, throughput_<model>.json (cnn3d, timm25d_resnet18,
# timm25d_convnext_atto, cnn3d_compile), result_cnn3d_gpu.json, logs.tar.gz.
# Knobs (environment): BUDGET_S (default 480: seconds for all steps together), STEPS (default
# "data cnn3d main timm compile": which steps), PY (the interpreter), DATA_PROFILE (default),
# EXTRA_THROUGHPUT / EXTRA_MAIN (more Hydra overrides; e.g. a CPU dry run with data=tiny).
set -uo pipefail # not -e: a failing step must not stop the others
set -x
export PYTHONUNBUFFERED=1
export HYDRA_FULL_ERROR=1
# Progress bars stay on (a step stopped by its limit must show where it was), thinned for logs.
export TQDM_MININTERVAL=10

OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-480}
START=$(date +%s)
WORK=${WORK:-/tmp/gpu_check}
LOGS=$WORK/logs
SUMMARY=$OUT/summary.txt
mkdir -p "$LOGS"
export NSCLC_IO_BENCH_CACHE=$WORK/cache # data, crops: shared by the throughput steps

finish() {
  set +x
  tar -C "$WORK" --exclude='weights' --exclude='*.pt' -czf "$OUT/logs.tar.gz" logs runs \
    2>/dev/null || tar -C "$WORK" -czf "$OUT/logs.tar.gz" logs
  echo "total $(($(date +%s) - START)) s" >>"$SUMMARY"
}
trap finish EXIT

left() { echo $((START + BUDGET_S - $(date +%s))); }
STEPS=" ${STEPS:-data cnn3d main timm compile} "
want() { [[ $STEPS == *" $1 "* ]]; }
read -r -a EXTRA_T <<<"${EXTRA_THROUGHPUT:-}"
read -r -a EXTRA_M <<<"${EXTRA_MAIN:-}"

# step NAME CAP_S COMMAND...: run with timeout min(CAP_S, time left); log; one summary line.
step() {
  local name=$1 cap=$2 limit began rc
  shift 2
  limit=$(left)
  ((cap < limit)) && limit=$cap
  if ((limit < 30)); then
    echo "$name: skipped (only $(left) s left)" >>"$SUMMARY"
    return 0
  fi
  began=$(date +%s)
  timeout -k 15 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  echo "$name: rc=$rc in $(($(date +%s) - began)) s (limit $limit s)$( ((rc == 124)) && echo ' TIMED OUT')" >>"$SUMMARY"
  tail -n 40 "$LOGS/$name.log"
  return 0
}

# ---- python: our .venv if it works here, else the image's python3 + the carried bundle -----
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, hydra, monai" 2>/dev/null; then
  PY=${PY:-.venv/bin/python}
else
  PY=${PY:-python3}
  if [ -f .whl/site.tar.xz ]; then
    mkdir -p /tmp/site
    tar -xJf .whl/site.tar.xz -C /tmp/site 2>/dev/null ||
      "$PY" -c "import tarfile; tarfile.open('.whl/site.tar.xz').extractall('/tmp/site')"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi

set +x
{
  echo "gpu_check $(date -u +%FT%TZ) on $(hostname), python $PY, PYTHONPATH ${PYTHONPATH:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
    --format=csv,noheader 2>&1
  nproc
  "$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0])
for name in ("torch", "torchvision", "timm", "monai", "hydra", "omegaconf", "numpy", "scipy",
             "pandas", "sklearn", "sksurv", "SimpleITK", "nibabel", "tabulate", "tqdm"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')} {module.__file__}")
    except Exception as exc:
        print(f"{name} MISSING: {type(exc).__name__}: {exc}")
import torch
print("cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF
} >>"$SUMMARY" 2>&1
set -x
cat "$SUMMARY"

THROUGHPUT=(
  "$PY" -m benchmark.throughput hardware=gpu hardware.workers=12
  throughput.batch_sizes=[1,64,256] throughput.min_time_s=0.4 throughput.latency_iters=50
  throughput.warmup=5 throughput.training.min_time_s=1 "${EXTRA_T[@]}"
)
run_dir() { echo "hydra.run.dir=$WORK/runs/$1"; }
keep() { cp -f "$WORK/runs/$1/throughput.json" "$OUT/throughput_$1.json" 2>/dev/null || true; }

# Data first, on its own: simulating + validating the default cohorts is not a measurement.
want data && step data 150 "$PY" -c "
from pathlib import Path
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from benchmark.data import layout
from benchmark.data.source import resolve_root
with initialize_config_dir(str(Path('conf').resolve()), version_base='1.3'):
    cfg = compose('config', overrides=['paths.cache_dir=$NSCLC_IO_BENCH_CACHE',
                                       'data=${DATA_PROFILE:-default}'])
cache = Path(cfg.paths.cache_dir)
root = resolve_root(OmegaConf.to_container(cfg.data, resolve=True), cache, workers=14)
print(root, layout.scan(root, progress=False, cache_dir=cache, workers=8).fingerprint)
"

# (a) cnn3d: model-only sweep + end-to-end, crop cache cold (fills the shared cache) and warm.
if want cnn3d; then
  step cnn3d 210 "${THROUGHPUT[@]}" model=cnn3d "$(run_dir cnn3d)"
  keep cnn3d
fi

# (a) timm25d backbones: end-to-end on the warm crop cache the cnn3d step filled.
for model in timm25d_resnet18 timm25d_convnext_atto; do
  want timm || break
  step "$model" 75 "${THROUGHPUT[@]}" "model=$model" throughput.end_to_end.cold=false \
    throughput.end_to_end.repeats=2 throughput.training.enabled=false "$(run_dir "$model")"
  keep "$model"
done

# (b) the protocol run: its own crop cache (a first run's cost), the simulated data reused.
if want main; then
  MAIN_CACHE=$WORK/cache_main
  mkdir -p "$MAIN_CACHE"
  ln -sfn "$NSCLC_IO_BENCH_CACHE/data" "$MAIN_CACHE/data"
  TIME=(/usr/bin/time -v)
  [ -x /usr/bin/time ] || TIME=("$PY" -c '
import resource, subprocess, sys, time
began = time.time()
rc = subprocess.call(sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"\tElapsed (wall clock) seconds: {time.time() - began:.1f}\n\tUser time (seconds): "
      f"{ru.ru_utime:.1f}\n\tSystem time (seconds): {ru.ru_stime:.1f}\n\tMaximum resident "
      f"set size (kbytes): {ru.ru_maxrss}\n\tExit status: {rc}", file=sys.stderr)
sys.exit(rc)')
  MAIN_CAP=$(($(left) - 20)) # all the time left (the compile rows only run if some remains)
  ((MAIN_CAP > 330)) && MAIN_CAP=330
  step main_cnn3d $((MAIN_CAP + 20)) env NSCLC_IO_BENCH_CACHE="$MAIN_CACHE" "${TIME[@]}" \
    timeout -k 15 "$MAIN_CAP" "$PY" -m benchmark model=cnn3d hardware=gpu \
    "hydra.run.dir=$WORK/runs/main_cnn3d" "${EXTRA_M[@]}"
  cp -f "$WORK/runs/main_cnn3d/result.json" "$OUT/result_cnn3d_gpu.json" 2>/dev/null
  {
    echo "--- main_cnn3d: python -m benchmark model=cnn3d hardware=gpu (limit $MAIN_CAP s)"
    grep -E "Elapsed|User time|System time|Maximum resident|Exit status|Percent of CPU" \
      "$LOGS/main_cnn3d.log"
  } >>"$SUMMARY"
fi

# If time is left: torch.compile rows for cnn3d (compilation is reported, never timed).
if want compile; then
  step cnn3d_compile 150 "${THROUGHPUT[@]}" model=cnn3d throughput.compile=[true] \
    throughput.precisions=[fp16,bf16] throughput.layouts=[contiguous] \
    throughput.batch_sizes=[256] throughput.end_to_end.enabled=false \
    throughput.training.enabled=false "$(run_dir cnn3d_compile)"
  keep cnn3d_compile
fi

for f in "$OUT"/throughput_*.json; do
  [ -f "$f" ] && "$PY" -c "
import json, sys
from benchmark.throughput.throughput_record import summary
print(summary(json.load(open(sys.argv[1]))))" "$f" >>"$SUMMARY" 2>&1
done
cat "$SUMMARY"
