"""The measured front of a make-it-fit run: what each candidate gave, which are Pareto-optimal
(no other built model is both smaller and closer to the original), the winner and why it won."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slmdesk.optimize.fit.space import Candidate
from slmdesk.optimize.fit.target import FitTarget


@dataclass
class Outcome:
    """One candidate as the run left it: built and measured, skipped or refused (``reason``)."""

    candidate: Candidate
    predicted_size_bytes: int | None = None
    size_bytes: int | None = None
    kld_mean: float | None = None
    kld_p99: float | None = None
    top1_agreement: float | None = None
    built: bool = False
    reason: str = ""
    seconds: float = 0.0
    on_front: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        """Built and scored."""
        return self.built and self.kld_mean is not None and self.size_bytes is not None

    def as_dict(self) -> dict[str, Any]:
        """The ``front`` entry of the JSON output."""
        return {
            **self.candidate.as_dict(),
            "label": self.candidate.label(),
            "predicted_size_bytes": self.predicted_size_bytes,
            "size_bytes": self.size_bytes,
            "kld_mean": self.kld_mean,
            "kld_p99": self.kld_p99,
            "top1_agreement": self.top1_agreement,
            "built": self.built,
            "on_front": self.on_front,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """The inverse of `as_dict`."""
        return cls(
            Candidate.from_dict(data),
            data.get("predicted_size_bytes"),
            data.get("size_bytes"),
            data.get("kld_mean"),
            data.get("kld_p99"),
            data.get("top1_agreement"),
            bool(data.get("built")),
            str(data.get("reason") or ""),
            float(data.get("seconds") or 0.0),
            bool(data.get("on_front")),
        )


def pareto(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The measured outcomes no other measured one dominates, smallest first.

    Dominated: another is no larger and has no higher KLD, and is strictly better in one.
    """
    measured = sorted(
        (o for o in outcomes if o.measured),
        key=lambda o: (o.size_bytes, o.kld_mean),
    )
    front: list[Outcome] = []
    best_kld = float("inf")
    for o in measured:
        assert o.kld_mean is not None
        if o.kld_mean < best_kld:
            front.append(o)
            best_kld = o.kld_mean
    return front


def mark_front(outcomes: Sequence[Outcome]) -> None:
    """Set ``on_front`` on every outcome."""
    on = {id(o) for o in pareto(outcomes)}
    for o in outcomes:
        o.on_front = id(o) in on


def pick_winner(outcomes: Sequence[Outcome], target: FitTarget) -> Outcome | None:
    """The winner among measured outcomes meeting ``target``: the smallest when a KLD bound is
    given (ties: lower KLD), otherwise the lowest KLD (ties: smaller)."""
    meeting = [o for o in outcomes if o.measured and target.meets(o.size_bytes or 0, o.kld_mean)]
    if not meeting:
        return None
    if target.max_kld is not None:
        return min(meeting, key=lambda o: (o.size_bytes, o.kld_mean))
    return min(meeting, key=lambda o: (o.kld_mean, o.size_bytes))


def closest(outcomes: Sequence[Outcome], target: FitTarget) -> Outcome | None:
    """The measured outcome nearest the target when none meets it (relative miss, summed)."""
    measured = [o for o in outcomes if o.measured]
    if not measured:
        return None

    def miss(o: Outcome) -> float:
        total = 0.0
        if target.max_size_bytes is not None and o.size_bytes:
            total += max(0.0, o.size_bytes / target.max_size_bytes - 1)
        if target.max_kld is not None and o.kld_mean is not None:
            total += max(0.0, o.kld_mean / target.max_kld - 1)
        return total

    return min(measured, key=lambda o: (miss(o), o.size_bytes, o.kld_mean))


def _mb(size: int | None) -> str:
    return f"{(size or 0) / 1e6:,.1f} MB"


def reason_sentence(
    winner: Outcome,
    outcomes: Sequence[Outcome],
    target: FitTarget,
    baseline: Outcome | None = None,
) -> str:
    """One sentence on why ``winner`` won, with its nearest rival or the source as comparison.

    E.g. "IQ4_XS with importance matrix: the smallest built model with KLD ≤ 0.1 (0.083 at
    148.2 MB), 38 % smaller than the source (Q4_K_M, 253.0 MB, KLD 0.091)."
    """
    kld = winner.kld_mean or 0.0
    if target.max_kld is not None:
        claim = f"the smallest built model with KLD ≤ {target.max_kld:g} ({kld:.3f} at {_mb(winner.size_bytes)})"
        if target.max_size_bytes is not None:
            claim = claim[:-1] + f", within {_mb(target.max_size_bytes)})"
    else:
        claim = (
            f"the lowest KLD ({kld:.3f}) of the built models within "
            f"{_mb(target.max_size_bytes)} ({_mb(winner.size_bytes)})"
        )
    comparison = ""
    if baseline is not None and baseline.size_bytes and winner.size_bytes:
        change = 1 - winner.size_bytes / baseline.size_bytes
        base_kld = "" if baseline.kld_mean is None else f", KLD {baseline.kld_mean:.3f}"
        word = "smaller" if change >= 0 else "larger"
        comparison = (
            f", {abs(change) * 100:.0f} % {word} than the source "
            f"({baseline.candidate.label()}, {_mb(baseline.size_bytes)}{base_kld})"
        )
    else:
        others = [o for o in outcomes if o.measured and o is not winner]
        if others:
            rival = min(others, key=lambda o: abs((o.size_bytes or 0) - (winner.size_bytes or 0)))
            comparison = (
                f"; the nearest rival, {rival.candidate.label()}, measured "
                f"KLD {rival.kld_mean:.3f} at {_mb(rival.size_bytes)}"
            )
    return f"{winner.candidate.label()}: {claim}{comparison}."
