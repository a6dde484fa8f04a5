"""``slmdesk optimize MODEL --fit-size SIZE | --fit-memory | --max-kld X``: make it fit.

The options are added to the ``optimize`` parser; `wants_fit` tells `_optimize` to hand over.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from slmdesk.cli.output import human_size, print_json
from slmdesk.cli.validate import positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The make-it-fit options of ``optimize`` (then --quant is not needed)."""
    fit = p.add_argument_group("make it fit (instead of --quant)")
    where = fit.add_mutually_exclusive_group()
    where.add_argument("--fit-size", metavar="SIZE", help="at most this file size, e.g. 150MB")
    where.add_argument(
        "--fit-memory", action="store_true", help="the largest size this computer runs comfortably"
    )
    fit.add_argument(
        "--max-kld", metavar="X", help="the smallest model whose KL divergence is at most X"
    )
    fit.add_argument(
        "--fit-types", metavar="LIST", help="types to consider, e.g. Q8_0,Q4_K_M (default: all)"
    )
    fit.add_argument(
        "--max-builds",
        type=positive_int("builds", 100),
        default=8,
        metavar="N",
        help="build and measure at most N candidates (default 8)",
    )


def _vocabularies(args: argparse.Namespace) -> list[str | None] | None:
    """--vocabulary SET also tries the model trimmed to SET (the whole vocabulary is always tried)."""
    if not getattr(args, "vocabulary", None):
        return None
    from slmdesk.optimize.vocab.charsets import find_language_set

    find_language_set(args.vocabulary)  # an unknown set is refused with the choices
    return [None, args.vocabulary]


def wants_fit(args: argparse.Namespace) -> bool:
    """Whether the user asked for a make-it-fit run."""
    return bool(args.fit_size or args.fit_memory or args.max_kld is not None)


def run(args: argparse.Namespace, source: Any, name: str | None, bar: Any) -> int:
    """Search, build the winner, print the front (or exit 1 naming the closest candidate)."""
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.models.quant_types import canonical_name
    from slmdesk.optimize.fit.run import FitRequest, NoCandidateFits, make_it_fit
    from slmdesk.optimize.fit.space import FIT_TYPES
    from slmdesk.optimize.fit.target import make_target

    if args.prune is not None or args.prune_layers is not None:
        raise SlmdeskError("Make it fit chooses its own candidates; leave out --prune.")
    info = read_gguf_info(source)
    target = make_target(info, args.fit_size, args.fit_memory, args.max_kld)
    types = list(FIT_TYPES)
    if args.fit_types:
        types = [canonical_name(t) for t in args.fit_types.split(",") if t.strip()]
        unknown = [t for t in types if t not in FIT_TYPES]
        if unknown or not types:
            raise SlmdeskError(
                f"--fit-types takes some of {', '.join(FIT_TYPES)}; "
                f"{', '.join(unknown) or 'none given'} is not one."
            )
    if args.quant:
        types = [canonical_name(args.quant)]
        if types[0] not in FIT_TYPES:
            raise SlmdeskError(f"Make it fit searches {', '.join(FIT_TYPES)}; not {args.quant}.")
    request = FitRequest(
        source=source,
        target=target,
        name=name,
        n_threads=args.threads,
        types=types,
        with_imatrix=args.imatrix is not False,  # --no-imatrix leaves it out of the search
        max_builds=args.max_builds,
        calibration=args.calibration,
        vocabularies=_vocabularies(args),
    )

    def said(outcome: Any) -> None:
        bar.close()
        bar.stage = ""  # the next report opens a fresh bar under this line
        if outcome.built:
            text = (
                f"  {outcome.candidate.label()}: {human_size(outcome.size_bytes or 0)}, "
                f"KLD {outcome.kld_mean:.4f}"
            )
        else:
            text = f"  {outcome.candidate.label()}: {outcome.reason}"
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    try:
        result = make_it_fit(request, progress=bar, on_outcome=said)
    except NoCandidateFits:
        bar.close()
        raise
    finally:
        bar.close()
    if args.json:
        print_json(result.as_dict())
        return 0
    print(f"Created {result.name!r}: {result.path}")
    print(f"  {result.reason}")
    print("  measured:")
    for o in sorted((o for o in result.outcomes if o.built), key=lambda o: o.size_bytes or 0):
        mark = "*" if o is result.winner else ("+" if o.on_front else " ")
        print(
            f"  {mark} {human_size(o.size_bytes or 0):>10}  KLD {o.kld_mean:.4f}  "
            f"top-1 {(o.top1_agreement or 0) * 100:.1f}%  {o.candidate.label()}"
        )
    failed = [o for o in result.outcomes if o.reason.startswith("failed")]
    for o in failed:
        print(f"  ! {o.candidate.label()}: {o.reason}")
    print(f"  {result.elapsed_seconds:.0f} s")
    return 0
