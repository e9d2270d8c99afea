"""Scale-out measurements (issue note): sweep parallelism, and the cost of one run vs cohort size.

  a) sweep: MODELS x SEEDS on the tiny cohorts through Hydra's joblib launcher, once per
     ``--jobs`` value (default 1 and 2 parallel jobs), on a cache warmed beforehand so that every
     timing is of the same work. Reports each wall time and its ratio to the first.
  b) size: ``model=rf_radiomics`` (``--model``) on the default simulated cohorts with every arm
     multiplied by 1, 2 and 4 (``--sizes``), under ``/usr/bin/time -v``: wall time and peak RSS of
     a cold run (empty cache: simulate + radiomics + protocol) and then a warm run (same cache:
     the cached data and features, protocol only).

  python scripts/scaling.py                       # both parts, default sizes 1 2 4
  python scripts/scaling.py --part sweep          # a) only (~minutes on 2 cores)
  python scripts/scaling.py --part size --sizes 1 # b) at the default size only

Peak RSS is the largest single process of the run (GNU time reports the maximum over the
process tree, not the sum of concurrent workers). Run on a quiet machine: the timings are wall
clock. Results: ``<out>/scaling.json`` and a markdown table on stdout (``<out>/scaling.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
TIME = shutil.which("time") or "/usr/bin/time"


def bench(args: list[str], cache: Path, log: Path, timed: bool = False) -> dict[str, Any]:
    """Run ``python -m benchmark ARGS`` with its own cache; wall time, peak RSS, exit status."""
    env = {**os.environ, "NSCLC_IO_BENCH_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "benchmark", *args]
    use_time = timed and Path(TIME).is_file()
    if use_time:
        command = [TIME, "-v", *command]
    start = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.run(
            command, cwd=PROJECT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    wall = time.perf_counter() - start
    result: dict[str, Any] = {"args": args, "rc": proc.returncode, "wall_s": round(wall, 2)}
    if use_time:
        text = log.read_text(errors="replace")
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        cpu = re.search(
            r"User time \(seconds\): ([\d.]+)\s+System time \(seconds\): ([\d.]+)", text
        )
        if rss:
            result["peak_rss_mib"] = round(int(rss.group(1)) / 1024, 1)
        if cpu:
            result["cpu_s"] = round(float(cpu.group(1)) + float(cpu.group(2)), 2)
    if proc.returncode != 0:
        print(f"  ! exit {proc.returncode}, see {log}", file=sys.stderr)
    return result


def part_sweep(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cache = out / "cache-sweep"
    common = [
        f"model={','.join(args.models)}",
        f"seed={','.join(map(str, args.seeds))}",
        "data=tiny",
        f"hardware.workers={args.workers}",
        "hydra/launcher=joblib",
    ]
    print(f"a) sweep {len(args.models)} models x {len(args.seeds)} seeds, tiny cohorts", flush=True)
    # Warm-up: data, layout scan and features cached, so every timed sweep does the same work.
    warm = bench(
        ["-m", *common, "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={out / 'warm'}"],
        cache,
        out / "sweep-warm.log",
    )
    print(f"  warm-up {warm['wall_s']} s", flush=True)
    rows = []
    for jobs in args.jobs:
        result = bench(
            [
                "-m",
                *common,
                f"hydra.launcher.n_jobs={jobs}",
                f"hydra.sweep.dir={out / f'jobs{jobs}'}",
            ],
            cache,
            out / f"sweep-jobs{jobs}.log",
            timed=True,
        )
        result["n_jobs"] = jobs
        rows.append(result)
        print(f"  n_jobs={jobs}: {result['wall_s']} s", flush=True)
    base = rows[0]["wall_s"]
    for row in rows:
        row["ratio_to_first"] = round(row["wall_s"] / base, 3) if base else None
    return {"models": args.models, "seeds": args.seeds, "workers": args.workers, "runs": rows}


def part_size(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    sys.path.insert(0, str(PROJECT))
    from benchmark.data.simulator import load_profile

    arms = {name: dict(c["arms"]) for name, c in load_profile("default")["cohorts"].items()}
    rows = []
    print(f"b) {args.model} vs cohort size (default profile, arms x {args.sizes})", flush=True)
    for factor in args.sizes:
        # One dict per cohort: Hydra's override grammar takes no '+' (io+sabr) in a key path.
        overrides = [
            f"data.profile.cohorts.{cohort}.arms="
            + "{"
            + ",".join(f"{arm}:{round(n * factor)}" for arm, n in per_arm.items())
            + "}"
            for cohort, per_arm in arms.items()
        ]
        patients = sum(round(n * factor) for per_arm in arms.values() for n in per_arm.values())
        cache = out / f"cache-size{factor:g}"
        shutil.rmtree(cache, ignore_errors=True)
        row: dict[str, Any] = {"factor": factor, "patients": patients, "overrides": overrides}
        for phase in ("cold", "warm"):
            run = bench(
                [
                    f"model={args.model}",
                    f"hardware.workers={args.workers}",
                    *overrides,
                    f"hydra.run.dir={out / f'size{factor:g}-{phase}'}",
                ],
                cache,
                out / f"size{factor:g}-{phase}.log",
                timed=True,
            )
            row[phase] = run
            print(
                f"  x{factor:g} ({patients} patients) {phase}: {run['wall_s']} s, "
                f"peak {run.get('peak_rss_mib', '?')} MiB",
                flush=True,
            )
        rows.append(row)
    return {"model": args.model, "workers": args.workers, "runs": rows}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# scaling ({results['started_at']}, {results['host']['cpus']} CPUs)", ""]
    if "sweep" in results:
        s = results["sweep"]
        lines += [
            f"a) sweep {' '.join(s['models'])} x seeds {' '.join(map(str, s['seeds']))}, "
            f"tiny cohorts, hardware.workers={s['workers']}, warm cache",
            "",
            "| parallel jobs | wall (s) | ratio | CPU (s) |",
            "|---|---|---|---|",
        ]
        for r in s["runs"]:
            lines.append(
                f"| {r['n_jobs']} | {r['wall_s']} | {r['ratio_to_first']} | {r.get('cpu_s', '')} |"
            )
        lines.append("")
    if "size" in results:
        s = results["size"]
        lines += [
            f"b) model={s['model']}, hardware.workers={s['workers']}, default profile x factor",
            "",
            "| factor | patients | cold wall (s) | cold CPU (s) | cold peak RSS (MiB) "
            "| warm wall (s) | warm CPU (s) | warm peak RSS (MiB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in s["runs"]:
            c, w = r["cold"], r["warm"]
            cells = [f"{r['factor']:g}", str(r["patients"])]
            for run in (c, w):
                cells += [
                    str(run["wall_s"]),
                    str(run.get("cpu_s", "")),
                    str(run.get("peak_rss_mib", "")),
                ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["sweep", "size", "all"], default="all")
    parser.add_argument("--models", nargs="+", default=["cox_clinical", "rsf", "rf_radiomics"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2], help="joblib n_jobs values")
    parser.add_argument("--model", default="rf_radiomics", help="b) the model timed per size")
    parser.add_argument("--sizes", nargs="+", type=float, default=[1, 2, 4])
    parser.add_argument("--workers", type=int, default=1, help="hardware.workers of every run")
    parser.add_argument("--out", type=Path, default=None, help="default outputs/scaling/<time>")
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d_%H-%M-%S")
    out = (args.out or PROJECT / "outputs" / "scaling" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": stamp,
        "host": {"platform": platform.platform(), "cpus": len(os.sched_getaffinity(0))},
    }
    if args.part in ("sweep", "all"):
        results["sweep"] = part_sweep(args, out)
    if args.part in ("size", "all"):
        results["size"] = part_size(args, out)
    (out / "scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "scaling.md").write_text(table)
    print("\n" + table + f"\n{out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
