"""The CPU a record's numbers came from, precisely enough to tell CPUs apart for numerics.

A CPU's marketing name says little (a cloud VM reports "Intel(R) Xeon(R) Processor" for several
generations), and deep models' CPU runs differ from one CPU type to another: the kernels torch,
oneDNN and MKL pick depend on the vendor, the model and the widest instruction set. So a record
stores the vendor, family and model numbers, the ISA level torch dispatches to, and a short
``key`` made of them; two records with the same key ran the same kernels. Records written before
these fields existed get what their ``cpu`` string gives (the vendor) and ``?`` for the rest, and
a key with a ``?`` matches no other key (:func:`same_numerics`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

UNKNOWN = "?"
CPUINFO = Path("/proc/cpuinfo")
# Widest first: the ISA level a CPU's flags support, named as torch names its CPU capability.
FLAG_LEVELS = (("amx_tile", "avx512"), ("avx512f", "avx512"), ("avx2", "avx2"))
VENDOR_NAMES = (("intel", "GenuineIntel"), ("amd", "AuthenticAMD"), ("arm", "ARM"))


def cpuinfo_fields(text: str) -> dict[str, str]:
    """The first processor block of ``/proc/cpuinfo`` as name -> value."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return fields


def _read_cpuinfo() -> dict[str, str]:
    try:
        return cpuinfo_fields(CPUINFO.read_text())
    except OSError:
        return {}


def flags_isa(flags: str) -> str:
    """The widest ISA level a CPU's flags support (``default`` without AVX2)."""
    have = set(flags.split())
    for flag, level in FLAG_LEVELS:
        if flag in have:
            return level
    return "default"


def torch_isa() -> str | None:
    """The ISA level torch's CPU kernels dispatch to (``ATEN_CPU_CAPABILITY`` lowers it), or None
    without torch."""
    try:
        import torch
    except ImportError:
        return None
    return str(torch.backends.cpu.get_cpu_capability()).lower()


def torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def vendor_from_name(name: str) -> str:
    """A vendor id from a CPU's marketing name, for records that did not store one."""
    lowered = name.lower()
    for word, vendor in VENDOR_NAMES:
        if word in lowered:
            return vendor
    return UNKNOWN


def numerics_key(hardware: Mapping[str, Any]) -> str:
    """``vendor/family.model/isa`` of a record's ``provenance.hardware`` (``?`` where unknown)."""
    vendor = hardware.get("cpu_vendor") or vendor_from_name(str(hardware.get("cpu", "")))
    family = hardware.get("cpu_family", UNKNOWN)
    model = hardware.get("cpu_model_number", UNKNOWN)
    isa = hardware.get("cpu_isa") or UNKNOWN
    return f"{vendor}/{family}.{model}/{isa}"


def same_numerics(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two hardware dicts name the same CPU type for numerics; an unknown part (a record
    written before the key existed) never matches."""
    key_a, key_b = numerics_key(a), numerics_key(b)
    return UNKNOWN not in key_a and key_a == key_b


def cpu_fields() -> dict[str, Any]:
    """The numerics-relevant CPU fields ``provenance.hardware`` stores, with their ``key``."""
    info = _read_cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine()
    fields: dict[str, Any] = {
        "cpu_vendor": info.get("vendor_id") or vendor_from_name(name),
        "cpu_family": int(info["cpu family"]) if info.get("cpu family", "").isdigit() else UNKNOWN,
        "cpu_model_number": int(info["model"]) if info.get("model", "").isdigit() else UNKNOWN,
        "cpu_flags_isa": flags_isa(info.get("flags", "")),
        "cpu_isa": torch_isa() or flags_isa(info.get("flags", "")),
        "torch_threads": torch_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    fields["key"] = numerics_key(fields)
    return fields


__all__ = ["cpu_fields", "numerics_key", "same_numerics", "vendor_from_name"]
