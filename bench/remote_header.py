"""Remote header benchmark: bytes and requests to judge a file on the Hub before downloading it.

``python -m bench remote_header [--runs N]``

Against the local test Hub (the real ``huggingface_hub`` client, Range requests to its CDN),
for the real Gemma 3 270M starter file (a 6.5 MB header, 262k-token vocabulary) and a
synthesized file with a 200k-token BPE vocabulary and its merge list:

- bytes read and requests made by slmdesk's range reader (`slmdesk.models.gguf_ranges`), target
  <= 4 MB for Gemma;
- the same for the previous approach, read until it parses (4 MiB, then doubled), for comparison;
- time per header (median of the runs; the cache is cleared before each).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import gemma_file, go_online_for_local_hub, median, print_figures, save_results

REPO = "bench/remote-header-GGUF"
GEMMA_FILE = "gemma-3-270m-Q4_K_M.gguf"
BIG_FILE = "big-vocab-F16.gguf"
TARGET_GEMMA_BYTES = 4 << 20


def _read_until_it_parses(model: Any, read: Any) -> int:
    """The previous approach: the first 4 MiB, doubled until the header parses."""
    from slmdesk.common.errors import InvalidModelError
    from slmdesk.models.gguf_info import read_gguf_header

    size = model.files[0].size_bytes
    want = min(4 << 20, size)
    data = b""
    while True:
        data += read(len(data), want - len(data))
        try:
            read_gguf_header(data, model.name, size)
            return len(data)
        except InvalidModelError:
            if want >= min(64 << 20, size):
                raise
        want = min(want * 2, 64 << 20, size)


def _measure(local: Any, model: Any, runs: int) -> dict[str, Any]:
    import shutil

    from slmdesk.hub import listing as hub_api
    from slmdesk.hub.remote_header import cache_folder

    times: list[float] = []
    facts = None
    for _ in range(runs):
        shutil.rmtree(cache_folder(), ignore_errors=True)
        local.reset_log()
        start = time.perf_counter()
        facts = hub_api.read_file_header(model)
        times.append(time.perf_counter() - start)
    assert facts is not None
    ours = local.cdn_requests()
    ours_bytes = sum(r.body_bytes for r in ours)
    local.reset_log()
    start = time.perf_counter()
    plain_bytes = _read_until_it_parses(model, hub_api._range_reader(model, None))
    plain_time = time.perf_counter() - start
    plain = local.cdn_requests()
    local.reset_log()
    again = hub_api.read_file_header(model)
    return {
        "bytes_read": ours_bytes,
        "requests": len(ours),
        "seconds_median": median(times),
        "previous_bytes_read": sum(r.body_bytes for r in plain) or plain_bytes,
        "previous_requests": len(plain),
        "previous_seconds": plain_time,
        "cached_requests": len(local.cdn_requests()),
        "cached": again.from_cache,
        "data_offset": facts.data_offset,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench remote_header")
    parser.add_argument("--runs", type=int, default=3, help="timed reads of each header (median)")
    args = parser.parse_args(argv)
    gemma_path = gemma_file()
    if gemma_path is None:
        return 1

    go_online_for_local_hub()
    from big_vocab import write_big_vocab_gguf
    from hubserver import HubFile, LocalHub  # the same local Hub the tests use

    os.environ.pop("HF_TOKEN", None)
    root = Path(tempfile.mkdtemp(prefix="slmdesk-bench-remote-header-"))
    os.environ["SLMDESK_HOME"] = str(root / "home")
    big_path = write_big_vocab_gguf(root / BIG_FILE, 200_000)

    from slmdesk.hub import listing as hub_api

    local = LocalHub().start()
    try:
        repo = local.add_repo(REPO)
        repo.add(HubFile.lfs(GEMMA_FILE, gemma_path))
        repo.add(HubFile.lfs(BIG_FILE, big_path))
        os.environ["HF_ENDPOINT"] = local.url
        listing = hub_api.list_repo_models(REPO, with_card=False)
        by_name = {m.name: m for m in listing.models}
        figures = {
            "gemma": _measure(local, by_name[GEMMA_FILE], args.runs),
            "big_vocab": _measure(local, by_name[BIG_FILE], args.runs),
        }
    finally:
        local.stop()
    rows: list[tuple[str, str, str]] = []
    for label, fig in figures.items():
        target = f"target <= {TARGET_GEMMA_BYTES:,}" if label == "gemma" else ""
        rows += [
            (f"{label}: header ends at byte", f"{fig['data_offset']:,}", ""),
            (f"{label}: bytes read", f"{fig['bytes_read']:,}", target),
            (f"{label}: requests", str(fig["requests"]), ""),
            (f"{label}: time per header", f"{fig['seconds_median'] * 1000:.0f} ms", ""),
            (f"{label}: before (read until it parses)", f"{fig['previous_bytes_read']:,}", ""),
            (f"{label}: before, requests", str(fig["previous_requests"]), ""),
            (f"{label}: before, time", f"{fig['previous_seconds'] * 1000:.0f} ms", ""),
            (f"{label}: requests when cached", str(fig["cached_requests"]), "target 0"),
        ]
    figures["gemma_within_target"] = figures["gemma"]["bytes_read"] <= TARGET_GEMMA_BYTES
    print_figures("Remote GGUF header (local Hub)", rows)
    print(f"\nresults: {save_results('remote_header', figures)}")
    return 0 if figures["gemma_within_target"] else 1
