"""``slmdesk optimize`` and ``slmdesk eval``: shrink a model, and measure what it cost."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slmdesk.cli import optimize_fit
from slmdesk.cli.optimize_plan import add_plan_options, list_types, plan_summary
from slmdesk.cli.output import ProgressBar, human_size, print_json
from slmdesk.cli.validate import check_model_name, check_model_ref, positive_int, thread_count


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``optimize`` and ``eval`` commands."""
    p = sub.add_parser("optimize", help="prune and quantize a model, with a quality report")
    p.add_argument("model", help="library name or path to a .gguf file")
    p.add_argument(
        "--quant", help="target type, such as Q4_K_M, Q8_0 or F16 (not needed with a fit option)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--prune",
        type=positive_int("blocks", 10_000),
        metavar="N",
        help="remove N blocks, chosen by measurement",
    )
    group.add_argument("--prune-layers", metavar="LIST", help="remove these blocks, e.g. 3,7")
    p.add_argument(
        "--calibration",
        type=Path,
        help="text used to choose blocks and measure the importance matrix (default: shipped)",
    )
    add_plan_options(p)
    p.add_argument(
        "--vocabulary",
        metavar="SET",
        help="keep only the tokens of these languages: english-code or western-european",
    )
    p.add_argument("--name", help="library name of the new model")
    p.add_argument("--threads", type=thread_count, default=2, help="CPU threads (default 2)")
    p.add_argument("--no-eval", action="store_true", help="skip the quality report")
    p.add_argument("--json", action="store_true", help="print JSON")
    optimize_fit.add_arguments(p)
    p.set_defaults(func=_optimize, parser=p)

    e = sub.add_parser("eval", help="compare a model with a reference: KL divergence, perplexity")
    e.add_argument("model", help="library name or path of the model to judge")
    e.add_argument("--reference", required=True, help="library name or path of the reference")
    e.add_argument("--text", type=Path, help="UTF-8 text to evaluate on (default: shipped text)")
    e.add_argument("--threads", type=thread_count, default=2, help="CPU threads (default 2)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=_eval)


class _Bar:
    """One progress bar per stage, on stderr."""

    def __init__(self) -> None:
        self.stage = ""
        self.bar: ProgressBar | None = None

    def __call__(self, p: Any) -> None:
        if p.stage != self.stage:
            if self.bar is not None:
                self.bar.finish()
            self.stage = p.stage
            self.bar = ProgressBar(p.stage)
        assert self.bar is not None
        if getattr(p, "fraction", None) is not None:
            self.bar.update(round(p.fraction * 1000), 1000, p.detail)
        else:
            self.bar.update(p.done, p.total, p.detail)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.finish()
            self.bar = None


def _optimize(args: argparse.Namespace) -> int:
    if args.list_types:
        return list_types(args)
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.models.library import Library
    from slmdesk.optimize.pipeline import OptimizeRequest, optimize
    from slmdesk.optimize.prune import parse_layer_list

    fit = optimize_fit.wants_fit(args)
    if not fit and not args.quant:
        args.parser.error(
            "the following arguments are required: --quant (or --fit-size, --fit-memory, --max-kld)"
        )
    name = None if args.name is None else check_model_name(args.name)
    source = Library().resolve(check_model_ref(args.model))
    if fit:
        return optimize_fit.run(args, source, name, _Bar())
    layers: list[Any] | None = None
    if args.prune_layers is not None:
        layers = list(parse_layer_list(args.prune_layers))
        if not layers:
            raise SlmdeskError("--prune-layers needs block numbers, such as 3,7.")
    if args.prune is not None and args.prune <= 0:
        raise SlmdeskError("--prune needs a positive number of blocks.")
    if args.calibration is not None and not args.calibration.is_file():
        raise SlmdeskError(f"Calibration text {args.calibration} does not exist.")
    request = OptimizeRequest(
        source=source,
        quant=args.quant,
        prune_layers=layers,
        prune_count=args.prune,
        calibration=args.calibration,
        name=name,
        n_threads=args.threads,
        evaluate=not args.no_eval,
        vocabulary=args.vocabulary,
        imatrix=args.imatrix,
        embedding_type=args.embedding_type,
        output_type=args.output_type,
    )
    bar = _Bar()
    told: list[str] = []

    def warn(text: str) -> None:
        """Say it before the long work goes on, so the user can stop and choose again."""
        told.append(text)
        clear = "\r\x1b[K" if sys.stderr.isatty() else ""
        sys.stderr.write(f"{clear}warning: {text}\n")
        sys.stderr.flush()

    try:
        result = optimize(request, progress=bar, warn=warn)
    finally:
        bar.close()
    if args.json:
        print_json(result.as_dict())
        return 0
    report = result.report
    for warning in result.warnings:
        if warning not in told:
            print(f"warning: {warning}")
    print(f"Created {result.name!r}: {result.path}")
    print(
        f"  size {human_size(report['size_before'])} -> {human_size(report['size_after'])}"
        f"  type {report['type']}"
        + (f"  removed blocks {report['removed_blocks']}" if report["removed_blocks"] else "")
    )
    print(f"  {plan_summary(report)}")
    speed = report.get("speed") or {}
    _print_eval(report.get("eval"), with_speed=not speed.get("ratio"))
    if speed.get("ratio"):
        print(
            f"  speed {speed['tokens_per_second']:.1f} tokens/s: {speed['summary']} "
            f"({speed['baseline_tokens_per_second']:.1f} tokens/s, measured back to back)"
        )
    vocabulary = report.get("vocabulary")
    if vocabulary:
        print(
            f"  vocabulary {vocabulary['set']}: kept {vocabulary['kept_tokens']:,} of "
            f"{vocabulary['original_tokens']:,} tokens; the trim alone adds KL divergence "
            f"{vocabulary['check']['kld_mean']:.4f}"
            + (
                " (the figures above are the trimmed file's, over its tokens)"
                if report.get("eval")
                else ""
            )
        )
    comparison = report.get("comparison")
    if comparison:
        print(f"  {comparison['recommendation']}")
    return 0


def _print_eval(ev: dict[str, Any] | None, with_speed: bool = True) -> None:
    if not ev:
        return
    print(
        f"  KL divergence mean {ev['kld_mean']:.4f}, 99% {ev['kld_p99']:.4f}; "
        f"top-1 agreement {ev['top1_agreement'] * 100:.1f}%"
    )
    print(f"  perplexity {ev['ppl']:.3f} (reference {ev['ppl_reference']:.3f})")
    if with_speed and ev.get("tokens_per_second"):
        print(
            f"  speed {ev['tokens_per_second']:.1f} tokens/s "
            f"(reference {ev['tokens_per_second_reference']:.1f})"
        )


def _eval(args: argparse.Namespace) -> int:
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.models.library import Library
    from slmdesk.optimize.evaluate import evaluate

    library = Library()
    model = library.resolve(check_model_ref(args.model))
    reference = library.resolve(check_model_ref(args.reference))
    text = None
    if args.text is not None:
        try:
            text = args.text.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SlmdeskError(f"Cannot read {args.text} as UTF-8 text: {exc}.") from None
    bar = _Bar()
    try:
        report = evaluate(model, reference, text, args.threads, progress=bar)
    finally:
        bar.close()
    if args.json:
        print_json(report.as_dict())
        return 0
    print(f"{Path(model).name} vs {Path(reference).name} ({report.n_tokens_scored} tokens scored)")
    _print_eval(report.as_dict())
    return 0
