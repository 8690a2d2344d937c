"""Pure parsers of platform quantities the config's rules and the Kubeflow compiler share.

Kubernetes CPU/memory quantities ("500m", "32Gi") and GKE TPU topologies ("2x2x1"). Each parser
raises ValueError describing the bad value; callers add the config key.
"""

from __future__ import annotations

import math
import re

# Chips one TPU VM host holds, per GKE TPU type: a single KFP task is one pod on one host, so a
# slice larger than this needs a multi-host job (the Vertex route).
TPU_CHIPS_PER_HOST = {
    "tpu-v4-podslice": 4,
    "tpu-v5p-slice": 4,
    "tpu-v5-lite-podslice": 8,
    "tpu-v5-lite-device": 8,
    "tpu-v6e-slice": 8,
}

_CPU_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(E|P|T|G|M|K|Ei|Pi|Ti|Gi|Mi|Ki)?$")
# KFP's PipelineSpec expresses memory in gigabytes (10^9 bytes).
_BYTES_PER_UNIT = {
    None: 1,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def tpu_chip_count(topology: str) -> int:
    """Chips in a TPU topology such as `2x2x1` (v4/v5p) or `2x4` (v5e/v6e)."""
    parts = topology.split("x")
    if not topology or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{topology!r} is not a topology like 2x2x1 or 2x4")
    return math.prod(int(p) for p in parts)


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("8", "2.5", "500m") in cores."""
    match = _CPU_QUANTITY.match(quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a CPU quantity like 8 or 500m")
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_gigabytes(quantity: str) -> float:
    """A Kubernetes memory quantity ("32Gi", "500M", "1073741824") in GB, as PipelineSpec wants."""
    match = _MEMORY_QUANTITY.match(quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity like 32Gi or 500M")
    return float(match.group(1)) * _BYTES_PER_UNIT[match.group(2)] / 1e9
