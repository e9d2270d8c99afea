"""The table printed at the end of a run: every metric with its CI, beside the oracle."""

from __future__ import annotations

from collections.abc import Mapping

from tabulate import tabulate

from benchmark.evaluation.metrics import Metric, format_metric

Scores = Mapping[str, Mapping[str, Mapping[str, Metric]]]


def metrics_table(metrics: Scores, oracle: Scores) -> str:
    rows = []
    for key, tasks in metrics.items():
        for task, per_metric in tasks.items():
            for name, metric in per_metric.items():
                truth = oracle.get(key, {}).get(task, {}).get(name)
                count = metric.n_pos if metric.n_pos is not None else metric.n_events
                rows.append(
                    [
                        key,
                        task,
                        name,
                        format_metric(metric),
                        metric.n,
                        "" if count is None else count,
                        "" if truth is None else format_metric(truth),
                    ]
                )
    headers = ["cohort", "task", "metric", "value [95% CI]", "n", "pos/events", "oracle"]
    return tabulate(rows, headers=headers, tablefmt="github")
