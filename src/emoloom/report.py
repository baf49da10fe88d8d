"""Screen report: a ranked leaderboard (CSV, Markdown) and one self-contained HTML page.

    emoloom report runs/screens/quick

Reads a screen directory only — ``plan.json``, ``candidates/<name>/`` (``result.json``,
``eval/``, ``predictions/``, ``polarity.json``) and each training run's ``manifest.json`` and
``metrics.jsonl`` — and writes ``leaderboard.csv``, ``leaderboard.md`` and ``report.html``
beside them. It imports no model code (torch, transformers, the trainer, the screen runner),
so a copied screen directory renders anywhere in seconds.

Metric names are ``<corpus>-<split>:<metric>`` (``goemotions-test:macro_f1``),
``polarity:<rate>`` or an efficiency column (``train_wall_s``, ``peak_rss_mb``, ...). Each has a
direction: `emoloom.metrics.METRICS` declares the ones it knows, `DIRECTIONS` the rest.
Candidates are ranked by the primary metric in its direction, ties by name. ``result.json`` is
the candidate's commit point: without it the candidate is listed last as "incomplete", unranked,
and none of its partial files are read.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from emoloom.atomic import atomic_write
from emoloom.errors import EmoloomError
from emoloom.metrics import METRICS, VAD_DIMS, confusion

HEADLINE = ("macro_f1", "macro_recall", "vad_score", "accuracy", "micro_f1")
EVAL_METRICS = (*HEADLINE, "parse_ok", "macro_f1_7", "macro_f1_6")
POLARITY = ("polarity_flip_rate", "valence_flip_rate", "label_flip_rate")
EFFICIENCY = ("train_wall_s", "train_examples_per_s", "decode_examples_per_s", "peak_rss_mb",
              "trainable_params", "total_params")  # fmt: skip
# Directions of the leaderboard metrics that `METRICS` does not declare.
DIRECTIONS: Mapping[str, bool] = {
    "macro_f1_7": True,  # DailyDialog macro-F1 over all 7 classes
    "macro_f1_6": True,  # ... over the 6 emotions ("no emotion" excluded)
    "polarity_flip_rate": True,  # the prediction follows a valence-flipped text
    "valence_flip_rate": True,
    "label_flip_rate": True,
    "train_wall_s": False,
    "train_examples_per_s": True,
    "decode_examples_per_s": True,
    "peak_rss_mb": False,
    "trainable_params": False,  # at equal quality, the cheaper model wins
    "total_params": False,
}
BASE_COLUMNS = ("rank", "name", "model", "ablation", "status")
DONE, INCOMPLETE = "done", "incomplete"
DPI = 90
_RC = {"font.size": 7, "axes.titlesize": 8, "axes.labelsize": 7, "legend.fontsize": 6,
       "xtick.labelsize": 6, "ytick.labelsize": 6}  # fmt: skip


@dataclass(frozen=True)
class ReportPaths:
    csv: Path
    markdown: Path
    html: Path


def higher_is_better(name: str) -> bool:
    """Direction of a leaderboard metric (``<set>:<metric>``, ``polarity:<rate>`` or efficiency)."""
    metric = name.rsplit(":", 1)[-1]
    if metric in METRICS:
        return METRICS[metric].higher_is_better
    if metric in DIRECTIONS:
        return DIRECTIONS[metric]
    raise EmoloomError(f"Metric {name!r} declares no direction")


# --- reading the screen directory ----------------------------------------------------------


def _read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise EmoloomError(f"{path}: not valid JSON ({e})") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; [] when missing. A line that does not parse is skipped: an
    append-only log (metrics.jsonl) of a killed run can end in a torn line."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in rows if isinstance(r, dict)]


def _number(x: Any) -> float | None:
    ok = isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    return x if ok else None


def eval_values(
    set_name: str, report: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Leaderboard values and 95% CIs of one eval JSON (as `evaluate.py` writes it), strict view."""
    metrics = report.get("metrics") or {}
    strict = metrics.get("strict") or {}
    headline = strict.get("headline") or {}
    raw = {m: headline.get(m) for m in HEADLINE}
    if raw["vad_score"] is None:  # EmoBank: VAD only, no headline block
        raw["vad_score"] = (strict.get("vad") or {}).get("vad_score")
    raw["parse_ok"] = metrics.get("parse_ok")
    raw["macro_f1_7"] = report.get("macro_f1_all_classes")
    raw["macro_f1_6"] = report.get("macro_f1_without_excluded")
    values = {f"{set_name}:{m}": v for m, v in raw.items() if _number(v) is not None}
    cis = {}
    for m, ci in (strict.get("ci") or {}).items():
        low, high = (ci or {}).get("ci_low"), (ci or {}).get("ci_high")
        if m in raw and _number(low) is not None and _number(high) is not None:
            cis[f"{set_name}:{m}"] = (low, high)
    return values, cis


def _efficiency(result: Mapping[str, Any]) -> dict[str, float]:
    train, decode = result.get("train") or {}, result.get("decode") or {}
    rss = [
        v for v in (train.get("peak_rss_mb"), decode.get("peak_rss_mb")) if _number(v) is not None
    ]
    raw = {
        "train_wall_s": train.get("wall_s"),
        "train_examples_per_s": train.get("examples_per_s"),
        "decode_examples_per_s": decode.get("examples_per_s"),
        "peak_rss_mb": max(rss) if rss else None,
        "trainable_params": train.get("trainable_params"),
        "total_params": train.get("total_params"),
    }
    return {k: v for k, v in raw.items() if _number(v) is not None}


@dataclass
class Candidate:
    name: str
    model: str | None
    ablation: str | None
    status: str
    dir: Path
    train_run: Path | None
    result: dict[str, Any] | None
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)  # set name -> eval JSON
    values: dict[str, float] = field(default_factory=dict)
    cis: dict[str, tuple[float, float]] = field(default_factory=dict)


def _load_candidate(screen: Path, entry: Mapping[str, Any], sets: list[str]) -> Candidate:
    name = str(entry["name"])
    cdir = screen / "candidates" / name
    result = _read_json(cdir / "result.json")
    info = {**entry, **(result or {})}
    train_run = info.get("train_run")
    cand = Candidate(
        name=name,
        model=info.get("model"),
        ablation=info.get("ablation"),
        status=str(result.get("status", DONE)) if result is not None else INCOMPLETE,
        dir=cdir,
        train_run=screen / train_run if train_run else None,
        result=result,
    )
    if result is None:
        return cand
    paths = result.get("evals") or {s: f"eval/{s}.json" for s in sets}
    for set_name, rel in paths.items():
        report = _read_json(cdir / rel)
        if report is not None:
            cand.evals[set_name] = report
            values, cis = eval_values(set_name, report)
            cand.values.update(values)
            cand.cis.update(cis)
    polarity = _read_json(cdir / "polarity.json") or result.get("polarity") or {}
    for m in POLARITY:
        if _number(polarity.get(m)) is not None:
            cand.values[f"polarity:{m}"] = polarity[m]
    cand.values.update(_efficiency(result))
    return cand


@dataclass
class _Board:
    plan: dict[str, Any]
    sets: list[str]  # eval sets: the plan's, then any other a candidate has
    primary: str
    higher: bool
    columns: list[str]  # metric columns present for some candidate, CI columns after each
    candidates: list[Candidate]  # in leaderboard order
    ranks: dict[str, int]
    rows: list[dict[str, Any]]


def _build(screen_dir: str | Path, primary: str | None) -> _Board:
    screen = Path(screen_dir)
    plan = _read_json(screen / "plan.json")
    if not isinstance(plan, dict):
        raise EmoloomError(f"{screen}: no plan.json; is this a screen directory?")
    sets = [f"{s['corpus']}-{s['split']}" for s in (plan.get("evaluation") or {}).get("sets", [])]
    cands = [_load_candidate(screen, entry, sets) for entry in plan.get("candidates", [])]
    sets += sorted({s for c in cands for s in c.evals} - set(sets))
    available = [f"{s}:{m}" for s in sets for m in EVAL_METRICS]
    available += [f"polarity:{m}" for m in POLARITY] + list(EFFICIENCY)
    primary = primary or plan.get("primary_metric")
    if not primary:
        raise EmoloomError("No primary metric: pass one or set primary_metric in plan.json")
    if primary not in available:
        raise EmoloomError(f"Unknown metric {primary!r}. Available: {', '.join(available)}")
    higher = higher_is_better(primary)

    ranked = sorted(
        (c for c in cands if c.status == DONE and primary in c.values),
        key=lambda c: (-c.values[primary] if higher else c.values[primary], c.name),
    )
    ranks = {c.name: i for i, c in enumerate(ranked, start=1)}
    rest = sorted(
        (c for c in cands if c.name not in ranks), key=lambda c: (c.status == INCOMPLETE, c.name)
    )
    columns = []
    for key in available:
        if any(key in c.values for c in cands):
            columns.append(key)
            if any(key in c.cis for c in cands):
                columns += [f"{key}_ci_low", f"{key}_ci_high"]
    rows = []
    for c in ranked + rest:
        row: dict[str, Any] = {"rank": ranks.get(c.name), "name": c.name, "model": c.model,
                               "ablation": c.ablation, "status": c.status}  # fmt: skip
        for key in columns:
            if key.endswith(("_ci_low", "_ci_high")):
                metric, side = key.rsplit("_ci_", 1)
                ci = c.cis.get(metric)
                row[key] = None if ci is None else ci[0 if side == "low" else 1]
            else:
                row[key] = c.values.get(key)
        rows.append(row)
    return _Board(plan, sets, primary, higher, columns, ranked + rest, ranks, rows)


def leaderboard(screen_dir: str | Path, *, primary: str | None = None) -> list[dict[str, Any]]:
    """Ranked rows, one per candidate, exactly as written to leaderboard.csv (None = empty)."""
    return _build(screen_dir, primary).rows


# --- leaderboard tables --------------------------------------------------------------------

# (corpus, header, metric) of the compact Markdown/HTML table, corpus None for a column that
# belongs to no eval set. A corpus column uses its test split when the plan has one, else its
# first; a column shows only when some candidate has a value. Params share one cell.
_DISPLAY: tuple[tuple[str | None, str, str], ...] = (
    ("goemotions", "GoEmotions {split} Macro-F1", "macro_f1"),
    ("goemotions", "GoEmotions {split} Macro-R", "macro_recall"),
    ("goemotions", "GoEmotions {split} VAD", "vad_score"),
    ("goemotions", "GoEmotions {split} ParseOK", "parse_ok"),
    ("empathetic", "ED {split} Macro-F1", "macro_f1"),
    ("empathetic", "ED {split} accuracy", "accuracy"),
    ("dailydialog", "DD {split} 7-class F1", "macro_f1_7"),
    ("dailydialog", "DD {split} 6-class F1", "macro_f1_6"),
    (None, "polarity flip rate", "polarity:polarity_flip_rate"),
    (None, "train s", "train_wall_s"),
    (None, "train ex/s", "train_examples_per_s"),
    (None, "decode ex/s", "decode_examples_per_s"),
    (None, "peak RSS MB", "peak_rss_mb"),
    (None, "trainable/total params", "trainable_params"),
)


def _display(board: _Board) -> list[tuple[str, str]]:
    """(header, metric column) pairs of the compact table, the primary metric left out."""
    out = []
    for corpus, header, metric in _DISPLAY:
        if corpus is None:
            out.append((header, metric))
            continue
        splits = [s[len(corpus) + 1 :] for s in board.sets if s.startswith(f"{corpus}-")]
        if splits:
            split = "test" if "test" in splits else splits[0]
            out.append((header.format(split=split), f"{corpus}-{split}:{metric}"))
    present = [(h, k) for h, k in out if any(k in c.values for c in board.candidates)]
    return [(h, k) for h, k in present if k != board.primary]


def _params(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n:.0f}"


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return ""
    if key in ("train_wall_s", "peak_rss_mb"):
        return f"{value:.0f}"
    if key.endswith("examples_per_s"):
        return f"{value:.1f}"
    if key.endswith("_params"):
        return _params(value)
    return f"{value:.3f}"


def _table(board: _Board) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the compact leaderboard shared by leaderboard.md and report.html."""
    primary = board.primary
    display = _display(board)
    show_status = any(c.status != DONE for c in board.candidates)
    header = ["rank", "candidate", "ablation"] + (["status"] if show_status else [])
    header += [primary] + [h for h, _ in display]
    cells = []
    for c in board.candidates:
        value, ci = c.values.get(primary), c.cis.get(primary)
        main = _fmt(primary, value)
        if value is not None and ci is not None:
            main += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
        row = [str(board.ranks.get(c.name, "")), c.name, c.ablation or ""]
        row += [c.status] if show_status else []
        row.append(main)
        for _, key in display:
            cell = _fmt(key, c.values.get(key))
            if key == "trainable_params" and "total_params" in c.values:
                cell += f"/{_fmt('total_params', c.values['total_params'])}"
            row.append(cell)
        cells.append(row)
    return header, cells


def _primary_line(board: _Board) -> str:
    direction = "higher is better" if board.higher else "lower is better"
    return (
        f"Ranked by {board.primary} ({direction}); ties by name. Intervals in brackets are 95% "
        "percentile-bootstrap confidence intervals over examples (strict view)."
    )


def _markdown(board: _Board) -> str:
    header, cells = _table(board)

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    screen = board.plan.get("screen", "")
    out = [f"# Screen {screen}", "", _primary_line(board), "", line(header)]
    out.append("|" + "|".join("---" for _ in header) + "|")
    out += [line(row) for row in cells]
    return "\n".join(out) + "\n"


def _write_csv(board: _Board, path: Path) -> None:
    with atomic_write(path) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*BASE_COLUMNS, *board.columns])
        for row in board.rows:
            writer.writerow(
                ["" if row[k] is None else row[k] for k in (*BASE_COLUMNS, *board.columns)]
            )


# --- figures -------------------------------------------------------------------------------


def _png(fig: Figure) -> str:
    # A bare Figure (no pyplot) is never registered with a GUI manager, so it needs no
    # plt.close and cannot leak; "Software": None keeps the PNG bytes free of version strings.
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


# Figures use fixed margins: constrained layout measures every tick label and took most of the
# rendering time of a report.


def _per_label_figure(per_label: Mapping[str, Mapping[str, float]], title: str) -> Figure:
    names = list(per_label)
    fig = Figure(figsize=(6, 3))
    fig.subplots_adjust(left=0.08, right=0.99, top=0.9, bottom=0.33)
    ax = fig.add_subplot()
    ax.bar(range(len(names)), [per_label[n]["f1"] for n in names], color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(title)
    return fig


def confusion_from_predictions(
    rows: Sequence[Mapping[str, Any]], labels: Sequence[str]
) -> dict[str, Any] | None:
    """Gold vs first predicted label over prediction rows with exactly one gold label.

    A failed parse or an empty prediction counts as ``<none>``; same format as
    `emoloom.metrics.confusion`. Labels outside `labels` are appended (sorted) instead of
    rejected, so a report never fails on a label-set mismatch. None when no row qualifies.
    """
    single = [r for r in rows if len(r.get("gold_labels") or ()) == 1]
    if not single:
        return None
    gold = [list(r["gold_labels"]) for r in single]
    pred = [list(r.get("pred_labels") or ()) if r.get("parse_ok") else [] for r in single]
    seen = {lab for row in gold + pred for lab in row}
    names = list(labels) + sorted(seen - set(labels))
    return confusion(gold, pred, names)


def _confusion_figure(conf: Mapping[str, Any], title: str) -> Figure:
    rows, columns = conf["rows"], conf["columns"]
    counts = np.asarray(conf["matrix"], dtype=float)
    # colour by share of the gold row, so rare labels are as readable as frequent ones
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    big = len(rows) > 12
    fig = Figure(figsize=(6, 5.4) if big else (4.5, 3.6))
    fig.subplots_adjust(left=0.2, right=0.98, top=0.94, bottom=0.2 if big else 0.25)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted (first label)")
    ax.set_ylabel("gold")
    if not big:
        for i, j in np.ndindex(counts.shape):
            color = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{counts[i, j]:.0f}", ha="center", va="center", color=color)
    fig.colorbar(image, ax=ax, label="share of gold row")
    ax.set_title(title)
    return fig


def _vad_figure(rows: Sequence[Mapping[str, Any]], title: str) -> Figure:
    gold = np.array([r["gold_vad"] for r in rows], dtype=float)
    pred = np.array([r["pred_vad"] for r in rows], dtype=float)
    fig = Figure(figsize=(6, 2.4))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.8, bottom=0.18, wspace=0.35)
    axes = fig.subplots(1, 3)
    for j, (ax, dim) in enumerate(zip(axes, VAD_DIMS, strict=True)):
        rmse = float(np.sqrt(np.mean((gold[:, j] - pred[:, j]) ** 2)))
        ax.scatter(gold[:, j], pred[:, j], s=4, alpha=0.4, color="#4c72b0", linewidths=0)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"gold {dim.upper()}")
        ax.set_ylabel(f"predicted {dim.upper()}")
        ax.set_title(f"{dim.upper()} (RMSE {rmse:.3f})")
    fig.suptitle(title, fontsize=8)
    return fig


_CURVE_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("losses", ("loss", "loss_lm", "loss_vad", "loss_appraisal")),
    ("mixture", ("temperature", "b_fraction")),
    ("probe entropy", ("probe_entropy",)),
)


def _curves_figure(log: Sequence[Mapping[str, Any]], title: str) -> Figure | None:
    dev = sorted({k for r in log for k in r if k.startswith("dev_")})
    panels = []
    for name, keys in (*_CURVE_PANELS, ("dev scores", tuple(dev))):
        series = {}
        for key in keys:
            points = [
                (r["step"], r[key])
                for r in log
                if _number(r.get("step")) is not None and _number(r.get(key)) is not None
            ]
            if points:
                series[key] = points
        if series:
            panels.append((name, series))
    if not panels:
        return None
    nrows = (len(panels) + 1) // 2
    fig = Figure(figsize=(6, 2.4 * nrows))
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.3 / nrows, bottom=0.18 / nrows, hspace=0.5)
    axes = fig.subplots(nrows, 2, squeeze=False).ravel()
    for ax, (name, series) in zip(axes, panels, strict=False):
        for key, points in series.items():
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, label=key, linewidth=1, marker="." if len(points) < 3 else "")
        if name == "losses" and all(v > 0 for pts in series.values() for _, v in pts):
            ax.set_yscale("log")  # the total loss falls by orders of magnitude, its terms less
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend(loc="upper right")  # loc="best" searches the data and is slow
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=8)
    return fig


# --- HTML ----------------------------------------------------------------------------------


def _short(path: str) -> str:
    return "/".join(Path(path).parts[-2:])


def manifest_facts(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The audit facts of a training run's manifest.json, as (name, text) pairs."""
    m = manifest
    model = m.get("model") or {}
    params = [_number(model.get(k)) for k in ("trainable_params", "total_params")]
    model_text = " ".join(str(model[k]) for k in ("name", "finetune", "dtype") if model.get(k))
    if all(p is not None for p in params):
        model_text += f"; {params[0]:,} trainable of {params[1]:,} params"
    facts: list[tuple[str, Any]] = [
        (k, m.get(k)) for k in ("config_hash", "run_key_hash", "contract_version", "prompt_version")
    ]
    facts.append(("model", model_text or None))
    for d in m.get("data") or []:
        label = f"data {d.get('corpus')}/{d.get('split')}"
        label += f" ({d['role']})" if d.get("role") else ""
        files = ", ".join(
            f"{_short(p)} {str(sha)[:12]}" for p, sha in (d.get("files") or {}).items()
        )
        facts.append((label, f"{d.get('records')} records; {files}"))
    facts += [(k, m.get(k)) for k in ("data_fingerprint", "seed", "git_commit")]
    packages = m.get("packages") or {}
    facts.append(("packages", ", ".join(f"{k} {v}" for k, v in packages.items()) or None))
    facts += [(k, m.get(k)) for k in ("device", "started", "ended", "status", "stopped_by")]
    used = m.get("budget_used") or {}
    facts.append(("budget_used", ", ".join(f"{k}={v}" for k, v in used.items()) or None))
    return [(k, str(v)) for k, v in facts if v is not None]


_CSS = """
body { font-family: sans-serif; font-size: 14px; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; font-size: 12px; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
section.candidate { border-top: 2px solid #888; margin-top: 1.5em; }
img.figure { display: block; margin: 0.5em 0; max-width: 100%; }
.muted { color: #777; }
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _img(kind: str, candidate: str, png: str, alt: str) -> str:
    return (
        f'<img class="figure" id="fig-{_esc(candidate)}-{kind}" data-kind="{kind}" '
        f'data-candidate="{_esc(candidate)}" alt="{_esc(alt)}" src="data:image/png;base64,{png}">'
    )


def _pick(c: Candidate, preferred: str | None, ok: Callable[[str], bool]) -> str | None:
    """The preferred eval set when it qualifies, else the first that does."""
    order = ([preferred] if preferred in c.evals else []) + [s for s in c.evals if s != preferred]
    return next((s for s in order if ok(s)), None)


def _figures(c: Candidate, preferred: str | None, cache: dict[Path, str | None]) -> list[str]:
    out = []
    predictions: dict[str, list[dict[str, Any]]] = {}

    def rows_of(s: str) -> list[dict[str, Any]]:
        if s not in predictions:
            predictions[s] = _read_jsonl(c.dir / "predictions" / f"{s}.jsonl")
        return predictions[s]

    def per_label(s: str) -> Any:
        return ((c.evals[s].get("metrics") or {}).get("strict") or {}).get("classification")

    cls_set = _pick(c, preferred, lambda s: bool((per_label(s) or {}).get("per_label")))
    if cls_set is not None:
        fig = _per_label_figure(per_label(cls_set)["per_label"], f"Per-label F1, {cls_set}")
        out.append(_img("per-label-f1", c.name, _png(fig), f"per-label F1 on {cls_set}"))
        conf = c.evals[cls_set]["metrics"]["strict"].get("confusion")
        if conf is None:
            conf = confusion_from_predictions(
                rows_of(cls_set), list(per_label(cls_set)["per_label"])
            )
        if conf is not None:
            fig = _confusion_figure(conf, f"Confusion, {cls_set} (single-label rows)")
            out.append(_img("confusion", c.name, _png(fig), f"confusion matrix on {cls_set}"))

    def vad_rows(s: str) -> list[dict[str, Any]]:
        return [
            r for r in rows_of(s) if r.get("parse_ok") and r.get("gold_vad") and r.get("pred_vad")
        ]

    vad_set = _pick(c, preferred, lambda s: bool(vad_rows(s)))
    if vad_set is not None:
        fig = _vad_figure(vad_rows(vad_set), f"Predicted vs gold VAD, {vad_set} (parsed rows)")
        out.append(_img("vad-scatter", c.name, _png(fig), f"VAD scatter on {vad_set}"))

    if c.train_run is not None:
        if c.train_run not in cache:  # decode-only ablations share their parent's run
            fig = _curves_figure(_read_jsonl(c.train_run / "metrics.jsonl"), "Training curves")
            cache[c.train_run] = None if fig is None else _png(fig)
        if cache[c.train_run] is not None:
            out.append(_img("training-curves", c.name, cache[c.train_run], "training curves"))
    return out


def _facts_table(facts: Sequence[tuple[str, str]], cls: str, candidate: str | None = None) -> str:
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts)
    owner = "" if candidate is None else f' data-candidate="{_esc(candidate)}"'
    return f'<table class="{cls}"{owner}>{body}</table>'


def _section(c: Candidate, board: _Board, cache: dict[Path, str | None]) -> str:
    parts = [
        f'<section class="candidate" id="candidate-{_esc(c.name)}">',
        f"<h2>{_esc(c.name)}</h2>",
    ]
    if c.result is None:
        parts.append('<p class="muted">Incomplete: no result.json yet.</p></section>')
        return "".join(parts)
    train = c.result.get("train") or {}
    decode = c.result.get("decode") or {}
    decode_text = " ".join(
        f"{k}={decode[k]}" for k in ("mode", "use_cache", "batch_size") if k in decode
    )
    facts = [
        ("model", c.model),
        ("ablation", c.ablation),
        ("status", c.status),
        ("train_run", c.result.get("train_run")),
        ("training", train.get("status")),
        ("stopped_by", train.get("stopped_by")),
        ("training reused", train.get("reused")),
        ("decode", decode_text or None),
        ("started", c.result.get("started")),
        ("finished", c.result.get("finished")),
    ]
    parts.append(_facts_table([(k, str(v)) for k, v in facts if v is not None], "facts", c.name))
    preferred = board.primary.split(":", 1)[0] if ":" in board.primary else None
    parts += _figures(c, preferred, cache)
    manifest = _read_json(c.train_run / "manifest.json") if c.train_run is not None else None
    if isinstance(manifest, dict):
        parts.append("<h3>Manifest</h3>")
        parts.append(_facts_table(manifest_facts(manifest), "manifest", c.name))
    else:
        parts.append('<p class="muted">No manifest.json in the training run.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _html(board: _Board) -> str:
    screen = board.plan.get("screen", "")
    header, cells = _table(board)
    text_columns = 4 if "status" in header else 3  # rank is numeric, then name, ablation, status

    def td(i: int, value: str) -> str:
        numeric = i == 0 or i >= text_columns
        return f'<td class="num">{_esc(value)}</td>' if numeric else f"<td>{_esc(value)}</td>"

    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(td(i, v) for i, v in enumerate(row))}</tr>\n" for row in cells)
    plan_facts = [(k, board.plan.get(k)) for k in ("config_path", "config_hash", "plan_version")]
    cache: dict[Path, str | None] = {}
    with matplotlib.rc_context(_RC):
        sections = [_section(c, board, cache) for c in board.candidates]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>emoloom screen {_esc(screen)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>emoloom screen {_esc(screen)}</h1>",
            f"<p>{_esc(_primary_line(board))}</p>",
            f'<table id="leaderboard"><thead><tr>{head}</tr></thead>',
            f"<tbody>\n{body}</tbody></table>",
            _facts_table([(k, str(v)) for k, v in plan_facts if v is not None], "plan"),
            *sections,
            "</body></html>",
        ]
    )


def write_report(screen_dir: str | Path, *, primary: str | None = None) -> ReportPaths:
    """Write leaderboard.csv, leaderboard.md and report.html into `screen_dir` (atomically).

    Same inputs give byte-identical files: nothing time-dependent is rendered.
    """
    screen = Path(screen_dir)
    board = _build(screen, primary)
    paths = ReportPaths(
        screen / "leaderboard.csv", screen / "leaderboard.md", screen / "report.html"
    )
    _write_csv(board, paths.csv)
    with atomic_write(paths.markdown) as f:
        f.write(_markdown(board))
    page = _html(board)
    with atomic_write(paths.html) as f:
        f.write(page)
    return paths
