"""Where a deep fit's time goes, from a py-spy profile: forward, backward, optimiser, waiting for
augmented batches, the rest.

    pip install py-spy     # not a project dependency: a profiler, needed only here
    py-spy record -f raw --threads --idle --rate 100 -o fit.txt -- \\
        .venv/bin/python -m benchmark model=cnn3d sandbox=none hardware.deep.epochs_3d=16
    python scripts/fit_profile.py fit.txt

``sandbox=none`` keeps the fits in the profiled process; ``--idle`` keeps the samples where the
training thread waits (for the augmentation thread, for a core), without which the shares would
only count the time it runs. Shares are of the main thread's samples inside
``benchmark.training.fit_binary`` (issue 27's goal: forward + backward >= 70%), and of the whole
run; the augmentation thread is listed apart, as the share of the fit during which it worked.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

# (category, frame substrings), matched against the frames below TrainStep.__call__, first wins.
STEP_PARTS = (
    ("backward", ("backward (torch/_tensor.py", "_engine_run_backward")),
    ("loss", ("BCEWithLogitsLoss",)),
    ("forward", ("_call_impl (torch/nn/modules/module.py",)),
    ("optimiser", ("GradScaler.step", "Optimizer", "AdamW", "zero_grad")),
    ("schedule", ("lr_scheduler",)),
)
RUN_PARTS = (
    ("crops (read or computed)", ("LesionCrops",)),
    ("predict", ("predict_proba", "predict_logits")),
    ("data (open, validate, simulate)", ("open_dataset", "benchmark/data/")),
    ("scoring", ("benchmark/evaluation/scoring.py", "benchmark/evaluation/metrics.py")),
    ("imports", ("_find_and_load",)),
)


def categorise(frames: list[str]) -> tuple[str, bool]:
    """(category, inside fit_binary) of one main-thread stack, outermost frame first."""
    fit = next((i for i, f in enumerate(frames) if f.startswith("fit_binary (")), None)
    if fit is None:
        rest = ";".join(frames)
        return next((c for c, keys in RUN_PARTS if any(k in rest for k in keys)), "other"), False
    inner = frames[fit + 1 :]
    step = next((i for i, f in enumerate(inner) if f.startswith("TrainStep.__call__ (")), None)
    if step is not None:
        below = ";".join(inner[step + 1 :])
        for category, keys in STEP_PARTS:
            if any(k in below for k in keys):
                return category, True
        return "step: input layout, other", True
    text = ";".join(inner)
    if "ahead (benchmark/training/batches.py" in text:
        return "waiting for the next augmented batch", True
    if "LesionBatches" in text or "BatchAugment" in text:
        return "batches and augmentation, in line", True
    if "predict_logits" in text:
        return "validation", True
    return "fit: other (set-up, epoch bookkeeping)", True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path, help="py-spy raw output (--threads --idle)")
    args = parser.parse_args(argv)
    fit, run = Counter(), Counter()
    augment_busy = 0
    for line in args.profile.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        n = int(count)
        if "MainThread" not in thread:
            # The look-ahead thread: busy when it is inside the augmentation or batch code.
            if any("BatchAugment" in f or "LesionBatches" in f for f in frames):
                augment_busy += n
            continue
        category, inside = categorise(frames)
        run["fit_binary" if inside else category] += n
        if inside:
            fit[category] += n
    total_fit, total_run = sum(fit.values()), sum(run.values())
    if not total_fit:
        print("no main-thread samples inside fit_binary: was it recorded with --threads?")
        return 1
    print(f"{args.profile}: {total_run} main-thread samples, {total_fit} in fit_binary")
    print(f"{'in fit_binary':44s} {'samples':>8s} {'% of fit':>9s}")
    for category, n in fit.most_common():
        print(f"{category:44s} {n:8d} {100 * n / total_fit:8.1f}%")
    share = (fit["forward"] + fit["backward"]) / total_fit
    print(f"{'forward + backward':44s} {fit['forward'] + fit['backward']:8d} {100 * share:8.1f}%")
    print(f"augmentation thread busy: {100 * augment_busy / total_fit:.1f}% of the fit's time")
    print(f"\n{'the whole run (main thread)':44s} {'samples':>8s} {'% of run':>9s}")
    for category, n in run.most_common():
        print(f"{category:44s} {n:8d} {100 * n / total_run:8.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
