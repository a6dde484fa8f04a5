"""The report card of a finished optimize run: figures, a recommendation and a small chart."""

from __future__ import annotations

from typing import Any

from slmdesk.optimize.plan_summary import plan_summary
from slmdesk.ui.format import human_duration, human_size
from slmdesk.ui.optimize.view import ReportStep
from slmdesk.ui.theme import ACCENT

GOOD_STYLE = "background: #e6f4ea; color: #14452a; border-radius: 6px; padding: 8px 10px;"
CAUTION_STYLE = "background: #fff4d6; color: #5c4100; border-radius: 6px; padding: 8px 10px;"


def quality_words(kld: float) -> str:
    """A rough, honest reading of a mean KL divergence for people who do not know the measure."""
    if kld < 0.01:
        return "practically the same predictions as the original"
    if kld < 0.05:
        return "very close to the original"
    if kld < 0.2:
        return "noticeably different from the original"
    if kld < 0.6:
        return "clearly degraded"
    return "heavily degraded: check its replies before relying on it"


def fill_report(view: ReportStep, result: Any, source_name: str, n_blocks: int | None) -> None:
    """Fill the report card from an `OptimizeResult` (its ``report`` dict)."""
    report: dict[str, Any] = result.report
    view.title.setText(f"{result.name} is ready")
    view.subtitle.setText(
        f"Made from {source_name} in {human_duration(report.get('seconds', 0))} and added "
        f"to your library: {result.path}\n{_sentence(plan_summary(report))}."
    )
    before, after = int(report["size_before"]), int(report["size_after"])
    saved = 100 * (1 - after / before) if before else 0.0
    view.size_tile.set(
        f"{human_size(before)} → {human_size(after)}",
        f"{saved:.0f}% smaller" if saved >= 0 else f"{-saved:.0f}% larger",
    )
    removed = list(report.get("removed_blocks") or [])
    if removed:
        view.blocks_tile.set(
            f"{n_blocks} → {n_blocks - len(removed)}" if n_blocks else f"-{len(removed)}",
            f"removed {', '.join(map(str, removed))}",
        )
    else:
        view.blocks_tile.set(str(n_blocks or "—"), "all kept")
    evaluation = report.get("eval")
    against = (
        "the original"
        if report.get("reference") in (None, report.get("source"))
        else "an F16 copy of the original"
    )
    if evaluation:
        kld = float(evaluation["kld_mean"])
        view.kld_tile.set(
            f"{kld:.3f}",
            f"99th percentile {float(evaluation['kld_p99']):.3f}: {quality_words(kld)}",
        )
        view.top1_tile.set(
            f"{100 * float(evaluation['top1_agreement']):.1f}%",
            f"of {evaluation.get('n_tokens_scored', 0):,} tokens of held-out text",
        )
        ppl, ppl_ref = float(evaluation["ppl"]), float(evaluation["ppl_reference"])
        change = 100 * (ppl / ppl_ref - 1) if ppl_ref else 0.0
        view.ppl_tile.set(f"{ppl:.2f}", f"{against}: {ppl_ref:.2f} ({change:+.1f}%)")
        tps, tps_ref = (
            evaluation.get("tokens_per_second"),
            evaluation.get("tokens_per_second_reference"),
        )
        speed = report.get("speed") or {}
        if speed.get("ratio"):
            view.speed_tile.set(
                f"{float(speed['tokens_per_second']):.1f} tokens/s",
                f"{speed['summary']} ({float(speed['baseline_tokens_per_second']):.1f} "
                "tokens/s, measured back to back)",
            )
        elif tps and tps_ref:
            view.speed_tile.set(
                f"{tps:.1f} tokens/s",
                f"{against}: {tps_ref:.1f} tokens/s ({tps / tps_ref:.2f}×)",
            )
        else:
            view.speed_tile.set("—", "not measured")
    else:
        for tile in (view.kld_tile, view.top1_tile, view.ppl_tile, view.speed_tile):
            tile.set("—", "not measured")
    comparison = report.get("comparison") or {}
    recommendation = comparison.get("recommendation")
    view.recommendation.setText(recommendation or "")
    view.recommendation.setVisible(bool(recommendation))
    if comparison.get("better") == "quantized":
        view.recommendation.setStyleSheet(CAUTION_STYLE)
    else:
        view.recommendation.setStyleSheet(GOOD_STYLE)
    warnings = list(result.warnings or report.get("warnings") or [])
    view.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))
    view.warnings.setVisible(bool(warnings))
    view.chart.set_groups(chart_groups(report))
    view.footnote.setText(
        "KL divergence compares the two models' next-token distributions on a held-out text "
        "(llama.cpp's definition); 0 means identical predictions. "
        f"Measured against {against}."
    )


def chart_groups(
    report: dict[str, Any],
) -> list[tuple[str, list[tuple[str, float, str, str]]]]:
    """Bars for the report chart: file sizes, and KL divergence of the alternatives."""
    grey, amber = "#9a9ea8", "#d08a00"
    comparison = report.get("comparison") or {}
    sizes = [
        ("Original", float(report["size_before"]), human_size(report["size_before"]), grey),
        (
            f"New ({report['type']})",
            float(report["size_after"]),
            human_size(report["size_after"]),
            ACCENT,
        ),
    ]
    if comparison.get("size_bytes"):
        sizes.append(
            (
                f"Unpruned {comparison['type']}",
                float(comparison["size_bytes"]),
                human_size(comparison["size_bytes"]),
                amber,
            )
        )
    groups = [("Size on disk", sizes)]
    evaluation = report.get("eval")
    if evaluation:
        klds = [
            (
                "New model",
                float(evaluation["kld_mean"]),
                f"{evaluation['kld_mean']:.3f}",
                ACCENT,
            )
        ]
        other = comparison.get("eval")
        if other:
            klds.append(
                (
                    f"Unpruned {comparison['type']}",
                    float(other["kld_mean"]),
                    f"{other['kld_mean']:.3f}",
                    amber,
                )
            )
        groups.append(("KL divergence (lower is better)", klds))
    return groups


def _sentence(text: str) -> str:
    """``text`` with a capital first letter (``str.capitalize`` would lower-case "Q4_0")."""
    return text[:1].upper() + text[1:]
