"""What a make-it-fit run aims at: a file size, this machine's memory, or a KL divergence bound."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.gguf_info import GGUFInfo
from slmdesk.models.hardware import COMFORT_SHARE, MachineInfo, ModelShape, machine_info

_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
# Below this a model file is not a model: refuse such targets with a sentence.
MIN_SIZE_BYTES = 1000


@dataclass(frozen=True)
class FitTarget:
    """The bounds a winner must meet; with ``max_kld`` the smallest such model wins, otherwise
    the one with the lowest KL divergence."""

    max_size_bytes: int | None = None
    max_kld: float | None = None
    # "size", "memory" or "kld": how the user put it, for messages.
    kind: str = "size"

    def meets(self, size_bytes: int, kld_mean: float | None) -> bool:
        """Whether a measured model meets every bound."""
        if self.max_size_bytes is not None and size_bytes > self.max_size_bytes:
            return False
        return self.max_kld is None or (kld_mean is not None and kld_mean <= self.max_kld)

    def describe(self) -> str:
        """A short phrase: "at most 150 MB", "KLD ≤ 0.1", both joined by "and"."""
        parts = []
        if self.max_size_bytes is not None:
            where = " (this computer's memory)" if self.kind == "memory" else ""
            parts.append(f"at most {self.max_size_bytes / 1e6:,.1f} MB{where}")
        if self.max_kld is not None:
            parts.append(f"KLD ≤ {self.max_kld:g}")
        return " and ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"max_size_bytes": self.max_size_bytes, "max_kld": self.max_kld, "kind": self.kind}


def parse_size(text: str) -> int:
    """Bytes from "150MB", "1.5GB", "900 MiB" or a plain number of bytes.

    Raises:
        SlmdeskError: anything else, with the accepted forms.
    """
    match = _SIZE.match(text or "")
    unit = match[2].upper() if match else ""
    if not match or unit not in _UNITS:
        raise SlmdeskError(f"{text!r} is not a size; write it like 150MB, 1.5GB or 900MiB.")
    size = int(float(match[1]) * _UNITS[unit])
    if size < MIN_SIZE_BYTES:
        raise SlmdeskError(f"{text!r} is too small for a model file; give at least 1 KB.")
    return size


def parse_max_kld(text: str | float) -> float:
    """A KL divergence bound: a positive number such as 0.1."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SlmdeskError(f"{text!r} is not a number; give a KL divergence such as 0.1.") from None
    if not value > 0 or value != value or value == float("inf"):
        raise SlmdeskError(f"The KL divergence bound must be above 0, not {text}.")
    return value


def memory_size_limit(info: GGUFInfo, machine: MachineInfo | None = None) -> int:
    """The largest file of this model that fits this machine comfortably.

    Why: the memory formula (models/hardware.py) adds the KV cache and compute overhead to the
    weights; what remains of the comfortable share of available memory is the file budget.
    """
    machine = machine or machine_info()
    shape = ModelShape.of(info)
    budget = COMFORT_SHARE * machine.available_ram
    # The KV cache does not depend on the weights' type for a known shape; measure it at zero.
    from slmdesk.models.hardware import estimate_for

    fixed = estimate_for(0, shape, None, machine).total_bytes
    limit = int(budget - fixed)
    if limit < MIN_SIZE_BYTES:
        raise SlmdeskError(
            f"This computer has {machine.available_ram / 1e6:,.0f} MB of memory available, too "
            "little for any version of this model; close other programs and try again."
        )
    return limit


def make_target(
    info: GGUFInfo,
    fit_size: str | None = None,
    fit_memory: bool = False,
    max_kld: str | float | None = None,
    machine: MachineInfo | None = None,
) -> FitTarget:
    """The target from the user's choices (at least one must be given)."""
    if fit_size is not None and fit_memory:
        raise SlmdeskError("Give either a size or this computer's memory as the target, not both.")
    size = None
    kind = "kld"
    if fit_size is not None:
        size, kind = parse_size(fit_size), "size"
    elif fit_memory:
        size, kind = memory_size_limit(info, machine), "memory"
    kld = parse_max_kld(max_kld) if max_kld is not None else None
    if size is None and kld is None:
        raise SlmdeskError("Give a target: a size, this computer's memory, or a KL divergence.")
    return FitTarget(size, kld, kind)
