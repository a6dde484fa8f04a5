"""Decode speed of several models measured in one child, back to back, on the same tokens and
threads: the only way two speeds on a busy machine can be compared at all."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from slmdesk.llama.scoring import ModelRunner

# Measurements per model; the best counts (other work on the machine only ever slows one down).
REPEATS = 2
SPEED_CTX = 256


def measure_speeds(
    models: Sequence[str],
    text: str,
    n_threads: int,
    progress: Callable[[str, int, int, str], None],
) -> list[float]:
    """Best-of-`REPEATS` greedy decode tokens/second of each model, in order."""
    speeds: list[float] = []
    for i, path in enumerate(models):
        with ModelRunner(path, SPEED_CTX, n_threads) as runner:
            tokens = runner.tokenize(text)[:64]
            speeds.append(max(runner.decode_speed(tokens) for _ in range(REPEATS)))
        progress("speed", i + 1, len(models), "")
    return speeds
