"""Hostile GGUF files: each is refused quickly, with one short clean sentence, before llama.cpp.

The files come from `tests.reliability.hostile` (one per fault found by fuzzing or reported).
Results are also written to the reliability results folder for docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info
from slmdesk.models.hardware import MachineInfo, context_for_load, estimate_memory
from tests.reliability.fuzz import REPO, check_loads, message_is_clean, results_dir
from tests.reliability.gguf_edit import STRING, UINT32, GGUFDoc
from tests.reliability.hostile import HOSTILE, Hostile

_RESULTS: list[dict[str, Any]] = []


@pytest.fixture(scope="module", autouse=True)
def hostile_results() -> Any:
    """Write what this module saw to ``hostile.json`` once all its tests ran."""
    yield
    if _RESULTS:
        folder = results_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".hostile.json.tmp"
        tmp.write_text(json.dumps(_RESULTS, indent=2) + "\n")
        os.replace(tmp, folder / "hostile.json")


def _write(tiny_model: Path, case: Hostile, folder: Path) -> Path:
    path = folder / (case.name.replace(" ", "-").replace("/", "-") + ".gguf")
    path.write_bytes(case.build(GGUFDoc.read(tiny_model)))
    return path


def _refusal(path: Path) -> tuple[InvalidModelError, float]:
    started = time.process_time()
    with pytest.raises(InvalidModelError) as caught:
        read_gguf_info(path)
    return caught.value, time.process_time() - started


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_file_is_refused_with_a_clean_sentence(
    case: Hostile, tiny_model: Path, tmp_path: Path
) -> None:
    path = _write(tiny_model, case, tmp_path)
    error, seconds = _refusal(path)
    message = str(error)
    _RESULTS.append(
        {"name": case.name, "fault": case.fault, "message": message, "cpu_s": round(seconds, 4)}
    )
    assert case.expect in message
    assert message_is_clean(message), message
    assert error.__cause__ is None, f"refused only by the last guard: {error.__cause__!r}"
    assert seconds < 2.0


def test_hostile_files_never_reach_llama_cpp(tiny_model: Path, tmp_path: Path) -> None:
    """The same files, loaded through the engine in a child process: refused, never a crash."""
    samples = [
        {
            "path": str(_write(tiny_model, case, tmp_path)),
            "source": "hostile",
            "number": n,
            "kind": case.fault,
            "target": case.name,
        }
        for n, case in enumerate(HOSTILE)
    ]
    result = check_loads(samples, tmp_path)
    assert result["crashes"] == [] and result["hangs"] == []
    assert result["refused"] == len(HOSTILE)


def test_huge_string_length_costs_nothing(tiny_model: Path, tmp_path: Path) -> None:
    """A key length claiming most of the file is refused before reading it (was: a 424 MB error)."""
    blob = bytearray(tiny_model.read_bytes())
    struct.pack_into("<Q", blob, 24, 1 << 22)  # the first key's length: 4 MB of a 5 MB file
    path = tmp_path / "huge-key.gguf"
    path.write_bytes(bytes(blob))
    tracemalloc.start()
    try:
        error, _ = _refusal(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(str(error)) <= 300
    assert peak < 1_000_000


def test_escape_codes_from_the_file_never_reach_the_terminal(
    tiny_model: Path, tmp_path: Path
) -> None:
    doc = GGUFDoc.read(tiny_model)
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31m" + "x" * 100_000
    doc.set("general.name", STRING, evil)
    doc.set(evil, UINT32, 1)
    doc.kvs.append(type(doc.kvs[0])(evil, UINT32, struct.pack("<I", 2)))
    path = doc.write(tmp_path / "evil.gguf")
    proc = subprocess.run(
        [sys.executable, "-m", "slmdesk", "inspect", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "\x1b" not in proc.stderr and len(proc.stderr) < 320


def test_escape_codes_in_accepted_text_are_not_shown(tiny_model: Path, tmp_path: Path) -> None:
    doc = GGUFDoc.read(tiny_model)
    doc.set("general.name", STRING, "\x1b[2J\x1b[31mred\x07" + "y" * 10_000)
    doc.set("general.license", STRING, "mit\x1b]0;title\x07")
    summary = read_gguf_info(doc.write(tmp_path / "named.gguf")).summary()
    assert summary["name"].startswith("??red?y") and len(summary["name"]) <= 200
    assert "\x1b" not in summary["license"] and "\x07" not in summary["license"]


def test_summary_and_estimate_never_raise_on_mistyped_values(tmp_path: Path) -> None:
    """Facts of any type read as absent: the summary and estimate always work."""
    info = GGUFInfo(
        path=tmp_path / "x.gguf",
        size_bytes=1,
        version=3,
        metadata={
            "general.architecture": "llama",
            "llama.block_count": "eighteen",
            "llama.context_length": -5,
            "llama.embedding_length": math.nan,
            "llama.attention.head_count": [],
            "llama.attention.head_count_kv": ["a", True],
            "llama.attention.key_length": 1.5,
            "llama.feed_forward_length": [None],
            "llama.attention.sliding_window": "512",
            "general.file_type": math.inf,
            "general.name": 7,
            "tokenizer.ggml.model": ["llama"],
            "tokenizer.ggml.tokens": "not a list",
        },
        tensors=[],
        data_offset=0,
    )
    summary = info.summary()
    assert summary["block_count"] == 0 and summary["context_length"] == 0
    assert summary["name"] is None and summary["tokenizer_model"] is None
    estimate = estimate_memory(info)
    assert estimate.total_bytes > 0
    assert info.sliding_window is None and info.file_type is None


def test_load_context_is_capped_by_memory(tiny_model: Path, tmp_path: Path) -> None:
    doc = GGUFDoc.read(tiny_model)
    doc.set("llama.context_length", UINT32, 1 << 24)
    info = read_gguf_info(doc.write(tmp_path / "long.gguf"))
    need_4k = estimate_memory(info, 4096).total_bytes
    small = MachineInfo(
        total_ram=int(need_4k / 0.9) + 1, available_ram=need_4k, physical_cores=2, logical_cores=2
    )
    started = time.process_time()
    asked = context_for_load(info, 2**31 - 1, small)
    assert 256 <= asked <= 4096
    assert estimate_memory(info, asked, small).verdict != "too big"
    assert context_for_load(info, None, small) <= 4096
    assert time.process_time() - started < 0.5


@pytest.mark.integration
def test_flipped_bit_in_gemma_key_length_is_refused_fast(gemma_model: Path, tmp_path: Path) -> None:
    """The reported case: one flipped bit in a Gemma 3 header length (was 26 s, 3.3 GB, 424 MB)."""
    info = read_gguf_info(gemma_model)
    with open(gemma_model, "rb") as handle:
        header = bytearray(handle.read(info.data_offset))
    (length,) = struct.unpack_from("<Q", header, 24)
    struct.pack_into("<Q", header, 24, length | 1 << 27)
    path = tmp_path / "gemma-flipped.gguf"
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(gemma_model.stat().st_size)  # the weights stay a hole
    tracemalloc.start()
    try:
        error, seconds = _refusal(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message_is_clean(str(error))
    assert seconds < 2.0
    assert peak < 50_000_000


@pytest.mark.timeout(3600)
def test_without_the_checks_llama_cpp_crashes(
    tiny_model: Path, tmp_path: Path, long_run: bool
) -> None:
    """Evidence for the checks: raw llama.cpp (no slmdesk in front) on each hostile file.

    ``--long`` only (one llama.cpp process per file; an abort takes seconds). Every case marked
    "llama.cpp abort" must really kill it; the outcomes go to ``hostile-raw.json``.
    """
    if not long_run:
        pytest.skip("runs with --long only")
    outcomes = []
    for case in HOSTILE:
        path = _write(tiny_model, case, tmp_path)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "tests.reliability.raw_load", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode < 0:
            outcome = signal.Signals(-proc.returncode).name
        else:
            outcome = "error" if proc.returncode else "loaded"
        outcomes.append(
            {
                "name": case.name,
                "fault": case.fault,
                "raw": outcome,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hostile-raw.json").write_text(json.dumps(outcomes, indent=2) + "\n")
    survived = [
        o for o in outcomes if o["fault"] == "llama.cpp abort" and o["raw"] in ("error", "loaded")
    ]
    assert not survived, survived


@pytest.mark.integration
def test_inflated_token_length_in_gemma_costs_nothing(gemma_model: Path, tmp_path: Path) -> None:
    """Found by the fuzzer: one token claiming 128 MB of the file took 1 GB before refusal."""
    info = read_gguf_info(gemma_model)
    with open(gemma_model, "rb") as handle:
        header = bytearray(handle.read(info.data_offset))
    key = b"tokenizer.ggml.tokens"
    token = header.index(key) + len(key) + 4 + 4 + 8  # the first token's length
    struct.pack_into("<Q", header, token, 1 << 27)
    path = tmp_path / "gemma-long-token.gguf"
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(gemma_model.stat().st_size)
    tracemalloc.start()
    try:
        error, seconds = _refusal(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "claims" in str(error) and seconds < 2.0
    assert peak < 50_000_000
