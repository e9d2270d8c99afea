"""JSON Schemas of what the leaderboard reads: result records, model cards, throughput records.

Kept as Python dicts rather than ``.json`` files so they travel with the package whatever the
install mode. ``python -m benchmark.leaderboard schema result`` prints one as JSON for other
tools. The schemas check shape and types; rules that relate fields to each other or to other
files (staleness, predictions) live in :mod:`benchmark.records.reading`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from benchmark.api.cohort import TASKS
from benchmark.records.record_format import SCHEMA as RESULT_SCHEMA_ID

MODEL_CARD_SCHEMA_ID = "nsclc-io-bench/model-card/v1"
THROUGHPUT_SCHEMA_ID = "nsclc-io-bench/throughput/v1"
FRESH_SCHEMA_ID = "nsclc-io-bench/fresh/v1"
SITE_SCHEMA_ID = "nsclc-io-bench/site/v1"

# Model names become file names (``<model>__seed<k>.json``) and Hydra option names.
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
SURVIVAL_METRIC_PATTERN = r"^(c_index|c_index_uno|td_auc_[0-9]+(\.[0-9]+)?m)$"

_METRIC: dict[str, Any] = {
    "type": "object",
    "required": ["value", "n"],
    "properties": {
        "value": {"type": ["number", "null"]},
        "ci95": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "n": {"type": "integer", "minimum": 0},
        "n_pos": {"type": "integer", "minimum": 0},
        "n_events": {"type": "integer", "minimum": 0},
        "not_computable": {"type": "string", "minLength": 1},
        "extra": {"type": "object"},
    },
    # Metric.to_dict is the only writer: an unknown key is a typo or a foreign record.
    "additionalProperties": False,
    # README, "Metrics": a number that cannot be computed says why, and has no CI.
    "if": {"properties": {"value": {"type": "null"}}},
    "then": {"required": ["not_computable"], "not": {"required": ["ci95"]}},
}

_LESION_TASK = {
    "type": "object",
    "required": ["auc"],
    "propertyNames": {"enum": ["auc", "brier"]},
    "additionalProperties": _METRIC,
}
_SURVIVAL_TASK = {
    "type": "object",
    "required": ["c_index"],
    "propertyNames": {"pattern": SURVIVAL_METRIC_PATTERN},
    "additionalProperties": _METRIC,
}


def _cohort_metrics(min_cohorts: int) -> dict[str, Any]:
    return {
        "type": "object",
        "minProperties": min_cohorts,
        "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
        "additionalProperties": {
            "type": "object",
            "minProperties": 1,
            "properties": {"lesion_pd": _LESION_TASK, "os": _SURVIVAL_TASK, "pfs": _SURVIVAL_TASK},
            "additionalProperties": False,
        },
    }


_SHA256 = r"^sha256:[0-9a-f]{16,64}$"
_UNKNOWN_OR_INT = {"anyOf": [{"type": "integer", "minimum": 0}, {"const": "?"}]}
# The CPU fields (benchmark/records/cpu.py) came later: all optional, so older records stay valid.
_HARDWARE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "cpu": {"type": "string"},
        "cpu_vendor": {"type": "string", "minLength": 1},
        "cpu_family": _UNKNOWN_OR_INT,
        "cpu_model_number": _UNKNOWN_OR_INT,
        "cpu_flags_isa": {"type": "string", "minLength": 1},
        "cpu_isa": {"type": "string", "minLength": 1},
        "torch_threads": {"type": ["integer", "null"], "minimum": 1},
        "key": {"type": "string", "pattern": r"^[^/]+/[^/]+\.[^/]+/[^/]+$"},
    },
}

RESULT_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": RESULT_SCHEMA_ID,
    "title": "nsclc-io-bench result record (result.json, one per run)",
    "type": "object",
    "required": ["schema", "model", "seed", "metrics", "oracle", "provenance"],
    "properties": {
        "schema": {"const": RESULT_SCHEMA_ID},
        "model": {"type": "string", "pattern": MODEL_NAME_PATTERN},
        "seed": {"type": "integer", "minimum": 0},
        "metrics": _cohort_metrics(1),
        # Data without simulator truth (a folder of real cohorts) has no oracle.
        "oracle": _cohort_metrics(0),
        "provenance": {
            "type": "object",
            "required": [
                "git_commit",
                "config",
                "data_fingerprint",
                "folds",
                "packages",
                "hardware",
                "started_at",
                "duration_s",
            ],
            "properties": {
                "git_commit": {"type": "string", "minLength": 1},
                "data_fingerprint": {"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"},
                "folds": {"type": "string", "pattern": _SHA256},
                "packages": {"type": "object", "additionalProperties": {"type": "string"}},
                "hardware": _HARDWARE,
                "started_at": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T"},
                "duration_s": {"type": "number", "minimum": 0},
                "peak_rss_mib": {"type": ["number", "null"], "minimum": 0},
                "config": {
                    "type": "object",
                    "required": ["data", "protocol", "model", "seed"],
                    "properties": {
                        "data": {"type": "object", "required": ["source"]},
                        "protocol": {
                            "type": "object",
                            "required": [
                                "development",
                                "external",
                                "tasks",
                                "cv",
                                "lesion_scope",
                                "bootstrap",
                                "survival",
                            ],
                        },
                        "model": {
                            "type": "object",
                            "required": ["name", "submission"],
                            "properties": {
                                "name": {"type": "string", "pattern": MODEL_NAME_PATTERN},
                                "submission": {"type": "object", "required": ["_target_"]},
                            },
                        },
                        "seed": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
    },
}

INPUTS = (
    "ct",  # the CT image itself (voxels)
    "mask",  # the lesion instance mask
    "radiomics",  # benchmark.features.radiomics
    "crops",  # benchmark.data.crops
    "site",  # lesion table: anatomical site
    "irradiated",  # lesion table: inside the SABR field
    "pdl1",
    "arm",
    "age",
    "sex",
    "ecog",
)

MODEL_CARD_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": MODEL_CARD_SCHEMA_ID,
    "title": "nsclc-io-bench model card (submissions/<name>/model_card.yaml)",
    "type": "object",
    "required": [
        "schema",
        "version",
        "authors",
        "description",
        "tasks",
        "inputs",
        "license",
        "citation",
    ],
    "properties": {
        "schema": {"const": MODEL_CARD_SCHEMA_ID},
        # Optional: the folder names the model; a card that repeats it must agree.
        "name": {"type": "string", "pattern": MODEL_NAME_PATTERN},
        "version": {"type": "string", "pattern": r"^\d+\.\d+(\.\d+)?$"},
        "authors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "affiliation": {"type": "string"},
                    "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
                    "github": {"type": "string"},
                    "orcid": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
        "description": {"type": "string", "minLength": 20},
        # A deep model: ``network()`` returns its Network (``python -m benchmark.check`` checks
        # the card against it). It decides the checks a submission gets and which tests are slow.
        "network": {"type": "boolean"},
        "tasks": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": list(TASKS)},
        },
        "inputs": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": list(INPUTS)},
        },
        # An SPDX identifier (https://spdx.org/licenses/), e.g. Apache-2.0, MIT, BSD-3-Clause.
        "license": {"type": "string", "pattern": r"^[A-Za-z0-9.+-]+$"},
        "citation": {"type": "string", "minLength": 1},
        "references": {"type": "array", "items": {"type": "string"}},
        # pip requirements beyond the harness's own dependencies (pinned, name==version).
        "requirements": {"type": "array", "items": {"type": "string", "pattern": r"==."}},
        "hardware": {"enum": ["cpu", "gpu"]},
    },
    "additionalProperties": False,
}

# Owned by the throughput records' writer; the leaderboard checks only what it renders.
THROUGHPUT_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": THROUGHPUT_SCHEMA_ID,
    "type": "object",
    "required": ["schema", "model", "rows", "hardware"],
    "properties": {
        "schema": {"const": THROUGHPUT_SCHEMA_ID},
        "model": {"type": "string", "minLength": 1},
        "rows": {"type": "array", "items": {"type": "object"}},
        "hardware": {"type": "object"},
    },
}

_FRESH_METRIC: dict[str, Any] = {
    "type": "object",
    "required": ["mean", "sd", "n"],
    "properties": {
        "mean": {"type": ["number", "null"]},
        "sd": {"type": ["number", "null"], "minimum": 0},
        "n": {"type": "integer", "minimum": 0},  # draws where the metric was computable
    },
    "additionalProperties": False,
}

# One model's figures over fresh data draws (benchmark/leaderboard/fresh_aggregate.py writes it).
# Aggregates only: no predictions, no per-draw numbers, and the seeds only when they are public.
FRESH_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": FRESH_SCHEMA_ID,
    "title": "nsclc-io-bench fresh-draw aggregate (leaderboard/fresh/<model>.json)",
    "type": "object",
    "required": [
        "schema",
        "model",
        "model_seed",
        "profile",
        "profile_key",
        "protocol_key",
        "model_config",
        "n_draws",
        "seed_source",
        "seed_digest",
        "git_commit",
        "run_commits",
        "metrics",
    ],
    "properties": {
        "schema": {"const": FRESH_SCHEMA_ID},
        "model": {"type": "string", "pattern": MODEL_NAME_PATTERN},
        "model_seed": {"type": "integer", "minimum": 0},
        "profile": {"type": "string", "minLength": 1},
        "profile_key": {"type": "string", "minLength": 1},
        "protocol_key": {"type": "string", "minLength": 1},
        "model_config": {"type": "string", "minLength": 1},
        "n_draws": {"type": "integer", "minimum": 1},
        "seed_source": {"enum": ["command line", "environment"]},
        "seed_digest": {"type": "string", "pattern": _SHA256},
        "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        "git_commit": {"type": "string", "minLength": 1},
        "run_commits": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "metrics": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*$"},
            "additionalProperties": {
                "type": "object",
                "propertyNames": {"enum": list(TASKS)},
                "additionalProperties": {"type": "object", "additionalProperties": _FRESH_METRIC},
            },
        },
    },
    "additionalProperties": False,
    # Seeds kept private (read from the environment) must never be written.
    "if": {"properties": {"seed_source": {"const": "environment"}}},
    "then": {"not": {"required": ["seeds"]}},
}

_INTERVAL: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
}

# One model on one (cohort, task) of a site: the board's standing, nothing per patient.
_SITE_STANDING: dict[str, Any] = {
    "type": "object",
    "required": ["model", "seeds", "value", "sd", "ci95", "rank", "rank_median", "rank_ci95"],
    "properties": {
        "model": {"type": "string", "pattern": MODEL_NAME_PATTERN},
        "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        "value": {"type": ["number", "null"]},
        "sd": {"type": ["number", "null"], "minimum": 0},
        "ci95": _INTERVAL,
        "rank": {"type": ["integer", "null"], "minimum": 1},
        "rank_median": {"type": ["number", "null"]},
        "rank_ci95": _INTERVAL,
        "p_best": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "diff_to_best": {"type": ["number", "null"]},
        "diff_ci95": _INTERVAL,
        "not_computable": {"type": "boolean"},
    },
    "additionalProperties": False,
}

_SITE_SECTION: dict[str, Any] = {
    "type": "object",
    "required": ["cohort", "task", "metric", "suppressed"],
    "properties": {
        "cohort": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "task": {"enum": list(TASKS)},
        "metric": {"enum": ["auc", "c_index"]},
        "suppressed": {"type": "boolean"},
        "n": {"type": "integer", "minimum": 0},  # lesions (lesion_pd) or patients
        "n_patients": {"type": "integer", "minimum": 0},
        "n_positive": {"type": "integer", "minimum": 0},  # PD lesions or events
        "standings": {"type": "array", "items": _SITE_STANDING},
    },
    "additionalProperties": False,
    # A suppressed cell says only that it was suppressed: no counts, no figures.
    "if": {"properties": {"suppressed": {"const": True}}},
    "then": {
        "not": {
            "anyOf": [{"required": [k]} for k in ("n", "n_patients", "n_positive", "standings")]
        }
    },
    "else": {"required": ["n", "n_patients", "n_positive", "standings"]},
}

# What a site publishes about one private dataset (benchmark/site/aggregate.py writes it):
# aggregates over every model it ran, no id, no per-patient value, no text from its tables.
SITE_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SITE_SCHEMA_ID,
    "title": "nsclc-io-bench site record (leaderboard/datasets/<name>.json)",
    "type": "object",
    "required": [
        "schema",
        "dataset",
        "data_fingerprint",
        "harness_commit",
        "protocol",
        "sandbox",
        "suppression",
        "models",
        "sections",
    ],
    "properties": {
        "schema": {"const": SITE_SCHEMA_ID},
        "dataset": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*$"},
        "data_fingerprint": {"type": "string", "pattern": _SHA256},
        "harness_commit": {"type": "string", "minLength": 1},
        "protocol": {"type": "object"},
        "sandbox": {"enum": ["bwrap", "process", "none"]},
        "suppression": {
            "type": "object",
            "required": ["min_patients", "min_events"],
            "properties": {
                "min_patients": {"type": "integer", "minimum": 1},
                "min_events": {"type": "integer", "minimum": 1},
            },
            "additionalProperties": False,
        },
        "models": {
            "type": "object",
            "propertyNames": {"pattern": MODEL_NAME_PATTERN},
            "additionalProperties": {
                "type": "object",
                "required": ["model_config", "seeds"],
                "properties": {
                    "model_config": {"type": "string", "minLength": 1},
                    "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "failed_seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                },
                "additionalProperties": False,
            },
        },
        "sections": {"type": "array", "items": _SITE_SECTION},
    },
    "additionalProperties": False,
}

SCHEMAS = {
    "result": RESULT_V1,
    "model_card": MODEL_CARD_V1,
    "throughput": THROUGHPUT_V1,
    "fresh": FRESH_V1,
    "site": SITE_V1,
}


def _where(path: Any) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def schema_errors(instance: Any, schema: Mapping[str, Any]) -> list[str]:
    """Every violation of ``schema`` as ``"at <dotted.path>: <message>"``, in a stable order."""
    validator = Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (list(map(str, e.path)), e.message)
    )
    return [f"at {_where(e.absolute_path)}: {e.message}" for e in errors]
