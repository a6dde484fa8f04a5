"""The plan choices of ``slmdesk optimize`` beyond the type: the importance matrix, the embedding
and output tensor types, and ``--list-types`` (the type table for a model with those choices)."""

from __future__ import annotations

import argparse

from slmdesk.cli.output import human_size, print_json, print_table
from slmdesk.cli.validate import check_model_ref
from slmdesk.optimize.plan_summary import plan_summary

__all__ = ["add_plan_options", "list_types", "plan_summary"]


def add_plan_options(p: argparse.ArgumentParser) -> None:
    """Add ``--imatrix/--no-imatrix``, ``--embedding-type``, ``--output-type``, ``--list-types``."""
    p.add_argument(
        "--imatrix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure an importance matrix on the calibration text and quantize with it "
        "(default: for K-quants below 5 bits and the IQ types; needed by IQ1/IQ2/IQ3_XXS)",
    )
    p.add_argument(
        "--embedding-type", metavar="T", help="type of the token embedding, such as Q5_0 or Q8_0"
    )
    p.add_argument("--output-type", metavar="T", help="type of the output tensor, such as Q6_K")
    p.add_argument(
        "--list-types",
        action="store_true",
        help="list the types this model can be made in, with predicted sizes, and exit",
    )


def list_types(args: argparse.Namespace) -> int:
    """Print the type table of ``args.model`` for the chosen plan (``--json``: the options)."""
    from slmdesk.models.library import Library
    from slmdesk.optimize.pipeline import size_preview

    source = Library().resolve(check_model_ref(args.model))
    options = size_preview(
        source,
        n_threads=args.threads,
        embedding_type=args.embedding_type,
        output_type=args.output_type,
        imatrix=args.imatrix,
    )
    if args.json:
        print_json({"types": [o.as_dict() for o in options]})
        return 0
    rows = [
        (
            o.name,
            human_size(o.predicted_size_bytes),
            f"{o.bits_per_weight:g}" if o.bits_per_weight else "",
            f"{o.ppl_increase:+.4f}" if o.ppl_increase is not None else "",
            "yes" if o.uses_imatrix else "no",
            o.verdict if o.available else f"unavailable: {o.reason}",
        )
        for o in options
    ]
    print_table(["type", "size", "bits", "ppl (Llama-3-8B)", "imatrix", "memory"], rows)
    return 0
