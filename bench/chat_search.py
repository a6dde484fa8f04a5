"""Chat search benchmark: the FTS5 index against a LIKE scan on the same 10,000 messages.

``python -m bench chat_search [--messages N] [--per-chat N] [--rounds N]``

Builds a conversation database the way the window does (``ConversationStore.add_message``), with
pseudo-English messages of realistic length, then measures in the same run:

- search time per query through `ConversationStore.search_conversations` (what the chat list
  calls, snippets included) with the FTS5 trigram index, and the same through the store's LIKE
  fallback on a copy of the database (opened as if this SQLite had no FTS5); the median over
  rounds for a rare word, a common word, two words in different messages, a phrase and a
  substring inside a word (best and median of the rounds). Target: indexed search <= 20 ms
  per query on 10,000 messages.
- the speed-up (LIKE ÷ FTS5) per query and overall.
- the cost of the index: building it when a version-1 database is migrated, the file size
  with and without it, and the time to add a message with the triggers keeping it in step
  against the same database without them.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, print_figures, save_results

_VOCABULARY = (
    "the a of to and in is it that for on with as was this be by at or from an are not have "
    "model text answer question time people way day thing world life hand part child eye place "
    "work week case point number group problem fact water system program story house state "
    "small large long short early young important public different possible whole free clear "
    "explain write read find give think tell become show leave feel bring begin keep hold turn "
    "memory token context layer weight file python function value error result reason example"
)
WORDS = _VOCABULARY.split()
RARE = ["volcano", "basalt", "sourdough", "kubernetes", "photosynthesis"]
QUERIES = {
    "rare word": "volcano",
    "common word": "model",
    "two words, two messages": "basalt sourdough",
    "phrase": '"important question"',
    "inside a word": "netes",
}


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    return " ".join(words).capitalize() + "."


def _message(rng: random.Random, index: int) -> str:
    text = " ".join(_sentence(rng) for _ in range(rng.randint(1, 6)))
    if index % 997 in (0, 1):  # a few pairs of messages carry rare words, one each
        text += f" {RARE[(index // 997 + index % 997) % len(RARE)]} again."
    return text


def build(path: Path, messages: int, per_chat: int, seed: int = 11) -> None:
    """A database of ``messages`` messages, ``per_chat`` to a conversation."""
    from slmdesk.chat.conversations import ConversationStore

    rng = random.Random(seed)
    with ConversationStore(path) as store:
        cid = 0
        for index in range(messages):
            if index % per_chat == 0:
                cid = store.create().id
            role = "user" if index % 2 == 0 else "assistant"
            store.add_message(cid, role, _message(rng, index))


def _search_times(store: Any, rounds: int) -> dict[str, tuple[float, float, int]]:
    """Best and median seconds and the hit count per query."""
    out = {}
    for label, query in QUERIES.items():
        times, hits = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            hits = len(store.search_conversations(query))
            times.append(time.perf_counter() - started)
        out[label] = (min(times), median(times), hits)
    return out


def _add_cost(store: Any, count: int = 60) -> float:
    """Median seconds to add a message to a conversation of the filled database."""
    rng = random.Random(5)
    cid = store.create().id
    costs = []
    for index in range(count):
        started = time.perf_counter()
        store.add_message(cid, "user" if index % 2 == 0 else "assistant", _message(rng, 2))
        costs.append(time.perf_counter() - started)
    return median(costs)


def _version_1_copy(source: Path, target: Path) -> None:
    """``source`` as slmdesk 1 left it: no index, no triggers, schema version 1."""
    shutil.copyfile(source, target)
    db = sqlite3.connect(target, isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    for table in ("message_search", "title_search"):
        db.execute(f"DROP TABLE {table}")
    db.execute("PRAGMA user_version = 1")
    db.execute("VACUUM")
    db.close()


def main(argv: list[str]) -> int:
    """Run the benchmark; prints a table and writes bench/results/chat_search.json."""
    import logging

    from slmdesk.chat import search_index
    from slmdesk.chat.conversations import ConversationStore

    parser = argparse.ArgumentParser(prog="python -m bench chat_search")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--per-chat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)

    figures: dict[str, Any] = {"messages": args.messages, "per_chat": args.per_chat}
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="slmdesk-bench-search-") as tmp:
        indexed_path = Path(tmp) / "indexed.sqlite3"
        build(indexed_path, args.messages, args.per_chat)

        old_path = Path(tmp) / "version1.sqlite3"
        _version_1_copy(indexed_path, old_path)
        figures["bytes_without_index"] = old_path.stat().st_size
        started = time.perf_counter()
        ConversationStore(old_path).close()  # migration 1 -> 2 builds the index
        figures["migration_build_seconds"] = round(time.perf_counter() - started, 3)
        db = sqlite3.connect(indexed_path)
        db.execute("VACUUM")
        db.close()
        figures["bytes_with_index"] = indexed_path.stat().st_size

        like_path = Path(tmp) / "like.sqlite3"
        shutil.copyfile(indexed_path, like_path)
        available = search_index.fts5_available
        search_index.fts5_available = lambda: False  # type: ignore[assignment]
        search_index.log.setLevel(logging.ERROR)  # the fallback's warning is expected here
        try:
            like_store = ConversationStore(like_path)
        finally:
            search_index.fts5_available = available  # type: ignore[assignment]
        with ConversationStore(indexed_path) as fts_store, like_store:
            assert fts_store.full_text_indexed and not like_store.full_text_indexed
            fts = _search_times(fts_store, args.rounds)
            like = _search_times(like_store, args.rounds)
            add_indexed, add_plain = _add_cost(fts_store), _add_cost(like_store)
        figures["add_message_indexed_ms"] = round(add_indexed * 1000, 3)
        figures["add_message_without_index_ms"] = round(add_plain * 1000, 3)

    per_query: dict[str, Any] = {}
    for label in QUERIES:
        (fts_s, fts_median, fts_hits), (like_s, like_median, like_hits) = fts[label], like[label]
        assert fts_hits == like_hits, f"{label}: {fts_hits} vs {like_hits} hits"
        per_query[label] = {
            "query": QUERIES[label],
            "hits": fts_hits,
            "fts5_best_ms": round(fts_s * 1000, 2),
            "like_best_ms": round(like_s * 1000, 2),
            "fts5_median_ms": round(fts_median * 1000, 2),
            "like_median_ms": round(like_median * 1000, 2),
            "speedup": round(like_s / fts_s, 1),
        }
        rows.append(
            (
                f"{label} ({fts_hits} chats)",
                f"{fts_s * 1000:.2f} ms vs {like_s * 1000:.1f} ms",
                f"{like_s / fts_s:.1f}x; target <= 20 ms",
            )
        )
    fts_total = sum(v[0] for v in fts.values())
    like_total = sum(v[0] for v in like.values())
    speedups = [like[label][0] / fts[label][0] for label in QUERIES]
    figures["queries"] = per_query
    figures["fts5_worst_ms"] = round(max(v[0] for v in fts.values()) * 1000, 2)
    figures["speedup_all_queries"] = round(like_total / fts_total, 1)
    figures["speedup_median_query"] = round(median(speedups), 1)
    rows.append(("all queries, LIKE ÷ FTS5 (total time)", f"{like_total / fts_total:.1f}x", ""))
    rows.append(("median query, LIKE ÷ FTS5", f"{median(speedups):.1f}x", "information"))
    rows.append(
        (
            "index build on migration",
            f"{figures['migration_build_seconds']:.2f} s",
            "information (once per database)",
        )
    )
    overhead = figures["bytes_with_index"] / figures["bytes_without_index"]
    rows.append(
        (
            "database size with / without index",
            f"{figures['bytes_with_index'] / 1e6:.1f} / {figures['bytes_without_index'] / 1e6:.1f} MB",
            f"{overhead:.1f}x",
        )
    )
    rows.append(
        (
            "add a message: indexed / no index",
            f"{add_indexed * 1000:.2f} / {add_plain * 1000:.2f} ms",
            "information (a committed, fsynced write)",
        )
    )
    # best of N: on a shared machine the fastest round is the cost of the query itself
    print_figures(f"chat_search: {args.messages:,} messages, best of {args.rounds}", rows)
    print(f"\nresults: {save_results('chat_search', figures)}")
    return 0
