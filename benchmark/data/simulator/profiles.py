"""Simulator profiles: ``conf/data/<name>.yaml:profile``, merged like Hydra, checked, per cohort.

Read directly (not through Hydra) so the simulator also works from a script or the data CLI.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.api.cohort import ARMS

SITES = ("lung", "lymph_node", "liver", "adrenal", "bone", "pleura")
# benchmark/data/simulator/profiles.py -> <repo>/conf/data
CONF_DIR = Path(__file__).resolve().parents[3] / "conf" / "data"


def _plain(obj: Any) -> Any:
    """Plain dict / list / scalar copy of a profile (OmegaConf nodes, mappings, numpy scalars)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, DictConfig | ListConfig):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_config(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """conf/data/<name>.yaml with its Hydra defaults list (same group) merged like Hydra does."""
    from omegaconf import OmegaConf

    if name in chain:
        raise ValueError(f"conf/data defaults loop: {' -> '.join((*chain, name))}")
    path = CONF_DIR / f"{name}.yaml"
    raw = _plain(OmegaConf.load(path)) or {}
    defaults = raw.pop("defaults", [])
    merged: dict[str, Any] = {}
    self_done = False
    for entry in defaults:
        if entry == "_self_":
            merged, self_done = _merge(merged, raw), True
        elif isinstance(entry, str):
            merged = _merge(merged, _read_config(entry, (*chain, name)))
        else:
            raise ValueError(f"{path}: only same-group names are supported in defaults: {entry!r}")
    return merged if self_done else _merge(merged, raw)


def available_profiles() -> list[str]:
    """Names of the simulator profiles: conf/data/*.yaml files with a ``profile`` key."""
    names = []
    for path in sorted(CONF_DIR.glob("*.yaml")):
        try:
            if "profile" in _read_config(path.stem):
                names.append(path.stem)
        except Exception:  # noqa: BLE001 - a broken neighbour config is not a profile
            continue
    return names


def load_profile(name: str) -> dict[str, Any]:
    """The simulator profile ``conf/data/<name>.yaml:profile`` as a plain, fully merged dict."""
    if (
        not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", str(name))
        or not (CONF_DIR / f"{name}.yaml").is_file()
    ):
        raise ValueError(
            f"unknown simulator profile {name!r}; available: {', '.join(available_profiles())} "
            f"(the conf/data/*.yaml files with a `profile` key, in {CONF_DIR})"
        )
    config = _read_config(str(name))
    if "profile" not in config:
        raise ValueError(
            f"conf/data/{name}.yaml is not a simulator profile (no `profile` key; source="
            f"{config.get('source')!r}); available: {', '.join(available_profiles())}"
        )
    return config["profile"]


def resolve_profile(profile: Mapping[str, Any] | str) -> dict[str, Any]:
    """A profile name or mapping as a plain dict, checked, with each cohort's settings merged."""
    prof = load_profile(profile) if isinstance(profile, str) else _plain(profile)
    if not isinstance(prof, dict):
        raise TypeError(f"profile must be a name or a mapping, got {type(profile).__name__}")
    for key in ("fov_mm", "cohorts"):
        if key not in prof:
            raise ValueError(f"simulator profile {prof.get('name')!r} has no {key!r}")
    if not prof["cohorts"]:
        raise ValueError("simulator profile has no cohorts")
    for name in prof["cohorts"]:
        cfg = cohort_settings(prof, name)
        where = f"profile {prof.get('name')!r}, cohort {name!r}"
        if set(cfg.get("arms", {})) - set(ARMS) or sum(cfg["arms"].values()) < 1:
            raise ValueError(f"{where}: arms must be counts for {ARMS}, got {cfg.get('arms')}")
        for arm, count in cfg["arms"].items():
            if count > 0:
                pfs, os_ = cfg["medians"][arm]["pfs"], cfg["medians"][arm]["os"]
                if not 0 < pfs < os_:
                    raise ValueError(f"{where}: arm {arm} needs 0 < PFS median < OS median")
        if sum(cfg["lesions"]["max_per_site"][s] for s in SITES) < len(cfg["lesions"]["count"]):
            raise ValueError(f"{where}: max_per_site cannot hold the largest lesion count")
        if len(cfg["acquisition"]["spacing_mm"]) != 3:
            raise ValueError(f"{where}: acquisition.spacing_mm must be [x, y, z]")
    return prof


def cohort_settings(profile: Mapping[str, Any], cohort: str) -> dict[str, Any]:
    """One cohort's settings: the profile's ``defaults`` overridden by the cohort's entries."""
    return _merge(profile.get("defaults", {}), profile["cohorts"][cohort])
