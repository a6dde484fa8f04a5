"""Guardrails for the optimize choices: a type that would not make the model smaller, and what to
build instead of a poor result.

Pure functions on numbers and report dicts (no files, no llama.cpp), shared by the pipeline, the
CLI and the wizard so all three say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slmdesk.models.quant_types import QUANT_TYPES, canonical_name, is_full_precision, quality_rank

# A result must be at least this much smaller than its source to be worth making.
MEANINGFUL_SHRINK = 0.10
# Mean KL divergence from which a result counts as heavily degraded (the report's wording).
HEAVY_KLD = 0.6
# Types recommended when a result is too degraded, from the smallest up.
RECOMMENDED_LADDER = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")


def size_change_percent(source_size: int, predicted_size: int) -> float:
    """How much larger (positive) or smaller (negative) the result would be, in percent."""
    if source_size <= 0:
        return 0.0
    return 100.0 * (predicted_size / source_size - 1.0)


def size_warning(
    source_quant: str, source_size: int, type_name: str, predicted_size: int
) -> str | None:
    """A sentence when ``type_name`` would make the file larger or not meaningfully smaller.

    Why: re-quantizing a quantized model to a "better" type only inflates the file (the lost
    precision does not come back), and a result barely smaller than its source is not worth the
    quality it costs.
    """
    if source_size <= 0 or predicted_size < source_size * (1 - MEANINGFUL_SHRINK):
        return None
    change = size_change_percent(source_size, predicted_size)
    if change >= 0.5:
        how = f"{change:.0f} % larger than"
    elif change > -0.5:
        how = "about as large as"
    else:
        how = f"only {-change:.0f} % smaller than"
    if is_full_precision(source_quant):
        why = "converting it would only cost time and disk space."
    else:
        why = "re-quantizing an already-quantized model never improves quality."
    return f"{type_name} would make this model {how} its {source_quant} source; {why}"


def grows_or_stays(source_size: int, predicted_size: int) -> bool:
    """Whether a type should not be preselected: the file would not get meaningfully smaller."""
    return source_size > 0 and predicted_size >= source_size * (1 - MEANINGFUL_SHRINK)


@dataclass(frozen=True)
class Recommendation:
    """A plan to build instead of the result on show: a type, without pruning."""

    quant: str
    reason: str

    @property
    def label(self) -> str:
        """What the button says."""
        return f"Build {self.quant} without pruning instead"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"quant": self.quant, "prune": None, "reason": self.reason}


def recommended_plan(report: dict[str, Any]) -> Recommendation | None:
    """What to build instead of the result ``report`` describes, or None when it is already the
    better choice.

    In order: the plain quantization the comparison measured as better; the same type without
    pruning when pruning degraded the model heavily; the next better type of
    `RECOMMENDED_LADDER` (still smaller than the source) when quantization alone did.
    """
    comparison = report.get("comparison") or {}
    if comparison.get("better") == "quantized" and comparison.get("type"):
        return Recommendation(
            str(comparison["type"]),
            f"plain {comparison['type']} kept more quality at about the same size",
        )
    evaluation = report.get("eval") or {}
    kld = evaluation.get("kld_mean")
    if kld is None or float(kld) < HEAVY_KLD:
        return None
    built = canonical_name(str(report.get("type", "")))
    if report.get("removed_blocks"):
        return Recommendation(built, "removing blocks degraded this model heavily")
    source = canonical_name(str(report.get("source_quantization", "")))
    source_type = QUANT_TYPES.get(source)
    source_bits = (source_type.bits_per_weight if source_type else None) or 16.0
    for name in RECOMMENDED_LADDER:
        bits = QUANT_TYPES[name].bits_per_weight or 16.0
        if quality_rank(name) > quality_rank(built) and bits < source_bits:
            return Recommendation(name, f"{built} degraded this model heavily")
    return None


def preselected_type(options: list[Any], remembered: str | None, default: str) -> str | None:
    """The type the wizard selects for a new source: the remembered choice, else the default,
    else the best type offered — each only when available and it makes the file meaningfully
    smaller (``options`` are `TypeOption` s, best first)."""
    usable = [o.name for o in options if o.available and not o.size_warning]
    for name in (remembered, default):
        if name in usable:
            return name
    return usable[0] if usable else None
