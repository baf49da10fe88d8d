"""Terminal tables for evaluation reports (rich); reads report dicts, imports no model code."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def print_eval(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=120)
    head = (
        f"{report['corpus']}/{report['split']}: {report['examples_evaluated']} of "
        f"{report['examples_total']} examples, {report['seconds']} s, "
        f"{report['model_calls_per_example']} model calls/example"
    )
    table = Table(title=head, title_justify="left")
    for col in ("view", "metric", "value", "95% CI"):
        table.add_column(col)
    metrics = report["metrics"]
    table.add_row("", "parse_ok", _fmt(metrics.get("parse_ok")), "")
    for view in ("strict", "paper"):
        data = metrics.get(view) or {}
        ci = data.get("ci") or {}
        for name, value in (data.get("headline") or {}).items():
            interval = ci.get(name)
            span = f"[{_fmt(interval['ci_low'])}, {_fmt(interval['ci_high'])}]" if interval else ""
            table.add_row(view, name, _fmt(value), span)
        if "vad" in data and not data.get("headline"):
            vad = data["vad"]
            table.add_row(view, "vad_score", _fmt(vad["vad_score"]), "")
            for dim, d in vad["per_dim"].items():
                table.add_row(view, f"pearson_{dim}", _fmt(d["pearson"]), "")
    if "macro_f1_all_classes" in report:  # DailyDialog: both conventions
        table.add_row("strict", "macro_f1 (all classes)", _fmt(report["macro_f1_all_classes"]), "")
        table.add_row(
            "strict", "macro_f1 (without no emotion)", _fmt(report["macro_f1_without_excluded"]), ""
        )
    for name, value in (report.get("ekman") or {}).items():
        table.add_row("ekman", name, _fmt(value), "")
    for name, value in (report.get("polarity") or {}).items():
        if isinstance(value, float):
            table.add_row("polarity", name, _fmt(value), "")
    console.print(table)
