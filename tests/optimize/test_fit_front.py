"""The front, the winner and the search's order, on numbers measured on the tiny model."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.hardware import COMFORT_SHARE, MachineInfo
from slmdesk.models.synth import write_tiny_llama
from slmdesk.optimize.fit.front import Outcome, pareto, pick_winner, reason_sentence
from slmdesk.optimize.fit.run import FitRequest, FitResult, make_it_fit
from slmdesk.optimize.fit.search import FitSearch
from slmdesk.optimize.fit.target import FitTarget, make_target, memory_size_limit, parse_size

TYPES = ("Q8_0", "Q4_K_M", "Q3_K_M", "Q2_K")


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FitResult]:
    """One real run that builds every type (exhaustive: the search's rules are replayed below)."""
    home = tmp_path_factory.mktemp("fit-home")
    model = write_tiny_llama(tmp_path_factory.mktemp("fit-model") / "tiny-F16.gguf")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLMDESK_HOME", str(home))
        request = FitRequest(
            model,
            FitTarget(max_size_bytes=10**9),
            types=TYPES,
            with_imatrix=False,
            max_builds=len(TYPES),
            exhaustive=True,
        )
        yield make_it_fit(request)


def _built(result: FitResult) -> list[Outcome]:
    return [o for o in result.outcomes if o.built]


def _dominated(o: Outcome, others: list[Outcome]) -> bool:
    return any(
        p is not o
        and p.size_bytes <= o.size_bytes  # type: ignore[operator]
        and p.kld_mean <= o.kld_mean  # type: ignore[operator]
        and (p.size_bytes < o.size_bytes or p.kld_mean < o.kld_mean)  # type: ignore[operator]
        for p in others
    )


def test_every_type_was_built_and_measured(measured: FitResult) -> None:
    built = _built(measured)
    assert sorted(o.candidate.type for o in built) == sorted(TYPES)
    assert all(o.size_bytes and o.kld_mean is not None and o.kld_mean >= 0 for o in built)
    assert all(0 <= (o.top1_agreement or 0) <= 1 for o in built)
    # predicted from the tensor table, not built: within 1 % of the real file
    assert all(abs(o.predicted_size_bytes - o.size_bytes) <= 0.01 * o.size_bytes for o in built)  # type: ignore[operator]


def test_the_front_is_exactly_the_undominated_models(measured: FitResult) -> None:
    built = _built(measured)
    front = pareto(measured.outcomes)
    assert {id(o) for o in front} == {id(o) for o in built if not _dominated(o, built)}
    assert all(o.on_front == (o in front) for o in built)
    sizes = [o.size_bytes for o in front]
    klds = [o.kld_mean for o in front]
    assert sizes == sorted(sizes) and klds == sorted(klds, reverse=True)


def test_winner_is_the_best_meeting_each_target(measured: FitResult) -> None:
    built = _built(measured)
    for o in built:
        by_size = FitTarget(max_size_bytes=o.size_bytes)
        meeting = [p for p in built if p.size_bytes <= o.size_bytes]  # type: ignore[operator]
        best = min(p.kld_mean for p in meeting)  # type: ignore[type-var]
        assert pick_winner(built, by_size).kld_mean == best  # type: ignore[union-attr]
        by_kld = FitTarget(max_kld=o.kld_mean, kind="kld")
        meeting = [p for p in built if p.kld_mean <= o.kld_mean]  # type: ignore[operator]
        smallest = min(p.size_bytes for p in meeting)  # type: ignore[type-var]
        assert pick_winner(built, by_kld).size_bytes == smallest  # type: ignore[union-attr]
    lowest = min(p.kld_mean for p in built)  # type: ignore[type-var]
    assert pick_winner(built, FitTarget(max_kld=lowest / 2, kind="kld")) is None


def _replay(built: list[Outcome], target: FitTarget, patience: int = 2) -> FitSearch:
    """Drive a new search over the measured candidates, answering with their measurements."""
    search = FitSearch(target, [(o.candidate, o.size_bytes or 0) for o in built], 100, patience)
    answers = {o.candidate: o for o in built}
    while (current := search.next_candidate()) is not None:
        o = answers[current.candidate]
        search.record_measured(o.size_bytes or 0, o.kld_mean or 0.0)
    search.finish()
    return search


def test_halving_finds_the_smallest_meeting_a_kld_bound(measured: FitResult) -> None:
    built = sorted(_built(measured), key=lambda o: o.size_bytes or 0)
    klds = [o.kld_mean for o in built]
    assert klds == sorted(klds, reverse=True), "the premise: smaller types lose more"
    for o in built:
        target = FitTarget(max_kld=o.kld_mean, kind="kld")
        search = _replay(built, target)
        winner = pick_winner(search.outcomes, target)
        assert winner is not None and winner.candidate == o.candidate
        assert search.builds <= math.ceil(math.log2(len(built))) + 1


def test_a_size_search_builds_largest_first_and_rules_out_worse_choices(
    measured: FitResult,
) -> None:
    built = _built(measured)
    search = _replay(built, FitTarget(max_size_bytes=10**9))
    largest = max(built, key=lambda o: o.size_bytes or 0)
    assert search.builds == 1  # the largest type rules out every type below it
    assert pick_winner(search.outcomes, search.target).candidate == largest.candidate  # type: ignore[union-attr]
    assert all(
        "at least as good in every choice" in o.reason for o in search.outcomes if not o.built
    )


def test_candidates_predicted_above_the_size_bound_are_not_built(measured: FitResult) -> None:
    built = sorted(_built(measured), key=lambda o: o.size_bytes or 0)
    bound = built[1].size_bytes or 0
    search = _replay(built, FitTarget(max_size_bytes=bound))
    too_big = [o for o in search.outcomes if (o.predicted_size_bytes or 0) > bound]
    assert too_big and not any(o.built for o in too_big)
    assert all("above the" in o.reason for o in too_big)


def test_reason_sentence_names_the_winner_and_the_comparison(measured: FitResult) -> None:
    assert measured.winner is not None and measured.baseline is not None
    text = measured.reason
    assert text.startswith(measured.winner.candidate.label())
    assert f"{measured.winner.kld_mean:.3f}" in text
    assert "smaller than the source (F16" in text
    alone = reason_sentence(measured.winner, _built(measured), measured.target)
    assert "nearest rival" in alone


def test_a_failed_build_is_recorded_not_fatal(measured: FitResult) -> None:
    built = _built(measured)
    search = FitSearch(
        FitTarget(max_size_bytes=10**9), [(o.candidate, o.size_bytes or 0) for o in built]
    )
    first = search.next_candidate()
    assert first is not None
    search.record_failed("llama.cpp could not convert it")
    second = search.next_candidate()
    assert second is not None and second.candidate != first.candidate
    assert first.reason == "failed: llama.cpp could not convert it" and not first.built


@pytest.mark.parametrize(
    ("text", "size"),
    [("150MB", 150_000_000), ("1.5GB", 1_500_000_000), ("900 MiB", 900 * 1024**2), ("2048", 2048)],
)
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["big", "150XB", "", "-5MB", "10"])
def test_bad_sizes_say_how_to_write_one(text: str) -> None:
    with pytest.raises(SlmdeskError):
        parse_size(text)


def test_memory_target_leaves_room_for_the_cache(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    machine = MachineInfo(8 * 10**9, 4 * 10**9, 2, 2)
    limit = memory_size_limit(info, machine)
    assert 0 < limit < COMFORT_SHARE * machine.available_ram
    target = make_target(info, fit_memory=True, machine=machine)
    assert target.kind == "memory" and target.max_size_bytes == limit
    with pytest.raises(SlmdeskError, match="too little"):
        memory_size_limit(info, replace(machine, available_ram=10**6))
    with pytest.raises(SlmdeskError, match="Give a target"):
        make_target(info)
