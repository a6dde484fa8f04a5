"""Which candidates to build, in which order, and when to stop (pure logic: no files, no llama).

Sizes are predicted exactly enough from the tensor table that a candidate predicted above a size
bound is never built. Then:

- with a KLD bound, the smallest model meeting it is wanted: the candidate of median predicted
  size among those still in question is built; if it meets the bound, every larger one is out
  (it cannot be the smallest); if it misses, every candidate no better in any choice is out
  (`space.no_better`: it would miss too). On a chain of types this is halving: about log2(n)
  builds.
- with a size bound only, the lowest KLD is wanted: the largest candidates that fit are built
  first; each measured one rules out those no better than it, and the search stops once
  `patience` builds in a row did not improve on the best.

Both stop after `max_builds`. The caller builds what `next_candidate` returns and reports back
with `record_measured` or `record_failed`.
"""

from __future__ import annotations

from collections.abc import Sequence

from slmdesk.optimize.fit.front import Outcome, mark_front
from slmdesk.optimize.fit.space import FIT_TYPES, Candidate, no_better
from slmdesk.optimize.fit.target import FitTarget

DEFAULT_MAX_BUILDS = 8
DEFAULT_PATIENCE = 2


def _order_key(o: Outcome) -> tuple[int, int, int]:
    """Size first; at equal size prefer the importance matrix and the better type."""
    rank = FIT_TYPES.index(o.candidate.type) if o.candidate.type in FIT_TYPES else len(FIT_TYPES)
    return (o.predicted_size_bytes or 0, 0 if o.candidate.imatrix else 1, rank)


class FitSearch:
    """The search's state: every candidate's `Outcome`, and the ones still worth building."""

    def __init__(
        self,
        target: FitTarget,
        predicted: Sequence[tuple[Candidate, int]],
        max_builds: int = DEFAULT_MAX_BUILDS,
        patience: int = DEFAULT_PATIENCE,
        exhaustive: bool = False,
    ) -> None:
        self.target = target
        # Build every candidate that fits (up to max_builds), largest first: the whole front.
        self.exhaustive = exhaustive
        self.max_builds = max(1, max_builds)
        self.patience = max(1, patience)
        self.outcomes = [Outcome(c, predicted_size_bytes=size) for c, size in predicted]
        self.builds = 0
        self._since_improved = 0
        self._best: float | None = None
        limit = target.max_size_bytes
        fitting: list[Outcome] = []
        for o in self.outcomes:
            if limit is not None and (o.predicted_size_bytes or 0) > limit:
                o.reason = (
                    f"not built: predicted {(o.predicted_size_bytes or 0) / 1e6:,.1f} MB, above "
                    f"the {limit / 1e6:,.1f} MB target"
                )
            else:
                fitting.append(o)
        fitting.sort(key=_order_key)
        # KLD bound: a window of sizes still in question, searched from its middle.
        # Size bound only: a queue, largest first.
        self._window = fitting if target.max_kld is not None and not exhaustive else fitting[::-1]
        self._current: Outcome | None = None
        self._current_index = 0

    # -- driving -----------------------------------------------------------------------------

    def next_candidate(self) -> Outcome | None:
        """The next outcome to build and measure, or None when the search is over."""
        if self._current is not None:
            raise RuntimeError("record the current candidate before asking for the next")
        if not self._window or self.builds >= self.max_builds:
            return None
        halving = self.target.max_kld is not None and not self.exhaustive
        if not halving and not self.exhaustive and self._since_improved >= self.patience:
            return None
        index = len(self._window) // 2 if halving else 0
        self._current_index = index
        self._current = self._window[index]
        return self._current

    def record_measured(
        self,
        size_bytes: int,
        kld_mean: float,
        kld_p99: float | None = None,
        top1_agreement: float | None = None,
        seconds: float = 0.0,
    ) -> Outcome:
        """The current candidate was built and scored."""
        o = self._take()
        o.built = True
        o.size_bytes, o.kld_mean, o.kld_p99 = size_bytes, kld_mean, kld_p99
        o.top1_agreement, o.seconds = top1_agreement, seconds
        meets = self.target.meets(size_bytes, kld_mean)
        if not meets:
            o.reason = self._miss_reason(o)
        del self._window[self._current_index]
        if self.exhaustive:
            return o
        if self.target.max_kld is not None:
            if meets:  # only smaller ones can win now
                self._window = [
                    w for w in self._window if (w.predicted_size_bytes or 0) < size_bytes
                ]
            else:  # those no better in any choice would miss too
                self._window = [w for w in self._window if not no_better(w.candidate, o.candidate)]
        else:
            if meets:  # those no better in any choice cannot beat it
                self._window = [w for w in self._window if not no_better(w.candidate, o.candidate)]
            if meets and (self._best is None or kld_mean < self._best):
                self._best = kld_mean
                self._since_improved = 0
            elif self._best is not None:
                self._since_improved += 1
        return o

    def record_failed(self, reason: str, seconds: float = 0.0) -> Outcome:
        """The current candidate could not be built (llama.cpp refused): keep the reason."""
        o = self._take()
        o.reason = f"failed: {reason}"
        o.seconds = seconds
        del self._window[self._current_index]
        return o

    def finish(self) -> list[Outcome]:
        """Close the search: reasons for candidates never built, the front marked."""
        why = (
            "not built: a smaller model already met the target, or one at least as good in "
            "every choice missed it"
            if self.target.max_kld is not None
            else "not built: a measured model at least as good in every choice, or the search "
            "stopped improving"
        )
        if self.builds >= self.max_builds:
            why = f"not built: the search stops after {self.max_builds} builds"
        for o in self.outcomes:
            if not o.built and not o.reason:
                o.reason = why
        mark_front(self.outcomes)
        return self.outcomes

    # -- helpers -----------------------------------------------------------------------------

    def _take(self) -> Outcome:
        if self._current is None:
            raise RuntimeError("no candidate is being built")
        o, self._current = self._current, None
        self.builds += 1
        return o

    def _miss_reason(self, o: Outcome) -> str:
        parts = []
        limit = self.target.max_size_bytes
        if limit is not None and (o.size_bytes or 0) > limit:
            parts.append(f"{(o.size_bytes or 0) / 1e6:,.1f} MB is above {limit / 1e6:,.1f} MB")
        if self.target.max_kld is not None and (o.kld_mean or 0) > self.target.max_kld:
            parts.append(f"KLD {o.kld_mean:.3f} is above {self.target.max_kld:g}")
        return "misses the target: " + " and ".join(parts)
