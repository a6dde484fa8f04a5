"""Settings a user saves for one model: how it is loaded and how its replies are sampled.

They live in the model's record in the library index, so they follow a rename and go away with
the model. The chat window, ``slmdesk chat`` and ``slmdesk serve`` start from them; a value the
user gives for one conversation or one command still wins.

The index is a file on disk and therefore hostile input: `ModelSettings.from_dict` keeps only
known keys of the right type within loose bounds, and drops anything else instead of failing, so
a damaged value never stops a model from loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Sampling keys and the loose bounds a stored value must respect to be used at all; the engine
# applies its own, stricter checks when it samples.
SAMPLING_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 100_000),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 5.0),
    "max_tokens": (1, 1 << 20),
    "seed": (0, 2**31 - 1),
}
INTEGER_KEYS = frozenset({"top_k", "max_tokens", "seed"})
MAX_CONTEXT = 1 << 24
MAX_THREADS = 1024
MAX_GPU_LAYERS = 10_000
MAX_SYSTEM_PROMPT = 32 * 1024  # characters


@dataclass(frozen=True)
class ModelSettings:
    """A model's saved defaults; 0 / None / empty means "not set: use the app's default".

    ``gpu_layers`` None lets slmdesk decide; 0 keeps the model on the CPU.
    """

    context_length: int = 0
    threads: int = 0
    gpu_layers: int | None = None
    system_prompt: str | None = None
    sampling: dict[str, float | int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """Whether nothing is set (the record then carries no settings at all)."""
        return self == ModelSettings()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form with only the values that are set."""
        data: dict[str, Any] = {}
        if self.context_length:
            data["context_length"] = self.context_length
        if self.threads:
            data["threads"] = self.threads
        if self.gpu_layers is not None:
            data["gpu_layers"] = self.gpu_layers
        if self.system_prompt is not None:
            data["system_prompt"] = self.system_prompt
        if self.sampling:
            data["sampling"] = dict(self.sampling)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ModelSettings:
        """Settings from stored data; unknown keys and unusable values are dropped."""
        if not isinstance(data, dict):
            return cls()
        system = data.get("system_prompt")
        return cls(
            context_length=_bounded_int(data.get("context_length"), 0, MAX_CONTEXT) or 0,
            threads=_bounded_int(data.get("threads"), 0, MAX_THREADS) or 0,
            gpu_layers=_bounded_int(data.get("gpu_layers"), 0, MAX_GPU_LAYERS),
            system_prompt=system[:MAX_SYSTEM_PROMPT] if isinstance(system, str) else None,
            sampling=sampling_from(data.get("sampling")),
        )

    def merged_sampling(self, chosen: dict[str, Any] | None) -> dict[str, Any]:
        """These sampling defaults overlaid with values chosen for one conversation or command."""
        values: dict[str, Any] = dict(self.sampling)
        values.update({k: v for k, v in (chosen or {}).items() if v is not None})
        return values


def sampling_from(data: Any) -> dict[str, float | int]:
    """The usable sampling values of stored data (known keys, finite numbers within bounds)."""
    if not isinstance(data, dict):
        return {}
    values: dict[str, float | int] = {}
    for key, (low, high) in SAMPLING_BOUNDS.items():
        value = data.get(key)
        if key in INTEGER_KEYS:
            number = _bounded_int(value, int(low), int(high))
            if number is not None:
                values[key] = number
        else:
            real = _bounded_float(value, low, high)
            if real is not None:
                values[key] = real
    return values


def _bounded_int(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def _bounded_float(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    real = float(value)
    if not math.isfinite(real) or not low <= real <= high:
        return None
    return real
