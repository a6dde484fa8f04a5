"""``slmdesk search|files|pull``: find GGUF models on the Hugging Face Hub and download them."""

from __future__ import annotations

import argparse
import sys

from slmdesk.cli.output import ProgressBar, human_size, print_json, print_table
from slmdesk.cli.validate import check_hub_endpoint, check_repo_ref, positive_int
from slmdesk.common.format import printable


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``search``, ``files`` and ``pull`` commands."""
    p_search = sub.add_parser("search", help="search GGUF models on the Hugging Face Hub")
    p_search.add_argument("query", nargs="?", default="", help="words in the repository name")
    p_search.add_argument(
        "--sort", choices=("downloads", "likes", "updated"), default="downloads", help="order"
    )
    p_search.add_argument(
        "--limit",
        type=positive_int("results", 1000),
        default=20,
        help="number of results (default 20)",
    )
    p_search.add_argument("--json", action="store_true", help="print JSON")
    p_search.set_defaults(func=_search)

    p_files = sub.add_parser("files", help="the GGUF files of a Hub repository, with fit verdicts")
    p_files.add_argument("repo", help="owner/name")
    p_files.add_argument("--card", action="store_true", help="also print the model card")
    p_files.add_argument("--json", action="store_true", help="print JSON")
    p_files.set_defaults(func=_files)

    p_pull = sub.add_parser("pull", help="download a model from the Hub into the library")
    p_pull.add_argument("repo", help="owner/name")
    which = p_pull.add_mutually_exclusive_group()
    which.add_argument("--file", help="the GGUF file to download (default: the recommended one)")
    which.add_argument("--quant", help="the quantization to download, e.g. Q4_K_M")
    p_pull.add_argument("--json", action="store_true", help="print JSON")
    p_pull.set_defaults(func=_pull)


def _search(args: argparse.Namespace) -> int:
    check_hub_endpoint()
    from slmdesk.hub.listing import search_models

    results = search_models(args.query, sort=args.sort, limit=args.limit)
    if args.json:
        print_json(
            {"query": args.query, "sort": args.sort, "results": [r.as_dict() for r in results]}
        )
        return 0
    if not results:
        print(f"No GGUF models found for {args.query!r}.")
        return 0
    rows = [
        [
            r.repo_id,
            f"{r.downloads:,}",
            f"{r.likes:,}",
            (r.last_modified or "")[:10],
            r.license or "-",
            "gated" if r.gated else "",
        ]
        for r in results
    ]
    print_table(["REPO", "DOWNLOADS", "LIKES", "UPDATED", "LICENSE", "ACCESS"], _safe_rows(rows))
    return 0


def _files(args: argparse.Namespace) -> int:
    check_hub_endpoint()
    from slmdesk.hub.listing import list_repo_models

    repo = list_repo_models(
        check_repo_ref(args.repo), with_card=args.card or args.json, read_header="every"
    )
    if args.json:
        print_json(repo.as_dict())
        return 0
    if args.card and repo.card_text:
        print(printable(repo.card_text.rstrip(), keep_newlines=True) + "\n")
    rows = [
        [
            ("* " if m.recommended else "  ") + m.name,
            m.quantization or "?",
            human_size(m.size_bytes),
            f"{len(m.files)} parts" if len(m.files) > 1 else "",
            m.verdict + (" (est.)" if not m.estimate_exact else ""),
        ]
        for m in repo.models
    ]
    print_table(["FILE", "QUANT", "SIZE", "SPLIT", "FIT"], _safe_rows(rows))
    rec = repo.recommended
    hint = (
        f"recommended: {printable(rec.name)}"
        if rec
        else "nothing fits comfortably in this computer's memory"
    )
    gated = " - gated: needs a token" if repo.gated else ""
    print(
        f"\n{hint}{gated}. Download with "
        f"`slmdesk pull {printable(repo.repo_id)} [--quant Q | --file F]`."
    )
    return 0


def _pull(args: argparse.Namespace) -> int:
    check_hub_endpoint()
    from slmdesk.hub.downloads import DownloadStatus, download_model
    from slmdesk.hub.listing import choose_model, list_repo_models

    repo = list_repo_models(check_repo_ref(args.repo), with_card=False)
    model = choose_model(repo, filename=args.file, quant=args.quant)
    bar = ProgressBar(printable(model.name))
    if not args.json:
        print(
            f"Downloading {printable(model.name)} ({printable(model.quantization or '?')}, "
            f"{human_size(model.size_bytes)}) from {printable(repo.repo_id)}",
            file=sys.stderr,
        )

    def on_progress(status: DownloadStatus) -> None:
        speed = f"{human_size(status.speed_bps)}/s" if status.speed_bps else ""
        eta = f"ETA {_clock(status.eta_seconds)}" if status.eta_seconds is not None else ""
        bar.update(status.done_bytes, status.total_bytes, f"{speed} {eta}".strip())

    try:
        status = download_model(model, progress=on_progress)
    except KeyboardInterrupt:
        bar.finish("paused; run the same command again to resume")
        raise
    bar.finish("verified")
    if args.json:
        print_json({**status.as_dict(), "sha256": model.sha256, "quantization": model.quantization})
    else:
        print(f"Added {status.library_name!r} to the library: {status.path}")
    return 0


def _safe_rows(rows: list[list[str]]) -> list[list[str]]:
    """Table cells with control characters shown as escapes: Hub names are untrusted."""
    return [[printable(cell) for cell in row] for row in rows]


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
