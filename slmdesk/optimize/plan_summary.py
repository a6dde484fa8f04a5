"""One sentence saying how a result was made beyond its type: the importance matrix and the
embedding and output tensor types (the CLI and the report card both say it)."""

from __future__ import annotations

from typing import Any


def plan_summary(report: dict[str, Any]) -> str:
    """``importance matrix: yes (reused); embedding type Q5_0; output type default``."""
    importance = report.get("importance") or {}
    if report.get("imatrix"):
        imatrix = "importance matrix: yes" + (" (reused)" if importance.get("reused") else "")
    else:
        imatrix = "importance matrix: no"
    embedding = report.get("embedding_type") or "default"
    output = report.get("output_type") or "default"
    return f"{imatrix}; embedding type {embedding}; output type {output}"
