"""Batch prediction over contract JSONL: one output row per input row, resumable.

    emoloom predict --run runs/default --input rows.jsonl --output preds.jsonl [--resume]

Every input line yields exactly one output line, in input order: a prediction, or an error
record for a line that is not a valid contract record (``--strict`` stops there instead). Rows
are decoded in batches and appended to ``<output>.partial`` (flushed and fsynced per batch);
when every row is written the partial file is renamed to the output, atomically. A killed run
restarted with ``--resume`` keeps the complete lines of the partial file, drops a torn last
line, and continues after the last written row: no duplicates, no gaps.

Output rows hold only deterministic fields (prediction, line, ParseOK, failure, model calls,
token counts), so the same model, config and input give byte-identical files; timings go to
the summary returned by `predict_file`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from emoloom.contract import Record, RecordError, parse_record_line
from emoloom.data.base import check_file
from emoloom.decoding import DecodeConfig, Decoder, DecodeResult
from emoloom.errors import DataError, EmoloomError
from emoloom.faults import fault_point


@dataclass
class PredictSummary:
    rows: int
    predicted: int
    errors: int
    parse_ok: int
    resumed_from: int
    seconds: float
    model_calls: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__ | {
            "examples_per_s": round(self.predicted / self.seconds, 3) if self.seconds else None
        }


def prediction_row(record: Record, result: DecodeResult, decode: DecodeConfig) -> dict[str, Any]:
    pred = result.prediction
    return {
        "id": record.id,
        "prediction": None
        if pred is None
        else {
            "labels": list(pred.labels),
            "vad": {"v": pred.vad[0], "a": pred.vad[1], "d": pred.vad[2]},
            "rationale": pred.rationale,
        },
        "line": result.line,
        "raw": result.raw if decode.mode == "free" else None,
        "parse_ok": result.parse_ok,
        "failure": result.failure,
        "decode": {
            "mode": decode.mode,
            "vad": decode.vad if decode.mode == "constrained" else "greedy",
            "labels": decode.labels,
            "model_calls": result.model_calls,
            "generated_tokens": result.generated_tokens,
            "forced_tokens": result.forced_tokens,
        },
    }


def error_row(line_number: int, raw: str, error: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
        rid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
        if rid is not None:
            rid.encode("utf-8")  # an id holding undecodable bytes is no id
    except (ValueError, UnicodeEncodeError):
        rid = None
    return {"id": rid, "input_line": line_number, "error": error, "parse_ok": False}


def _input_lines(source: Path | None) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each input line; bytes that are not UTF-8 become an error row
    later instead of stopping the job."""
    stream = source.open("rb") if source is not None else sys.stdin.buffer
    try:
        for n, raw in enumerate(stream, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            yield n, raw.decode("utf-8", errors="surrogateescape").rstrip("\r\n")
    finally:
        if source is not None:
            stream.close()


def _resume_point(partial: Path) -> int:
    """Number of complete rows in `partial`; a torn last line is cut off."""
    if not partial.exists():
        return 0
    data = partial.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with partial.open("r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return data[:end].count(b"\n")


def _write(out: IO[str], rows: list[dict[str, Any]]) -> None:
    out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out.flush()
    if out.fileno() > 2:
        os.fsync(out.fileno())


def _summary_of(output: Path) -> PredictSummary:
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    errors = sum(1 for r in rows if "error" in r)
    parse_ok = sum(1 for r in rows if r.get("parse_ok"))
    return PredictSummary(len(rows), len(rows) - errors, errors, parse_ok, len(rows), 0.0, 0)


def predict_file(
    decoder: Decoder,
    label_set: str,
    source: Path | None,
    output: Path | None,
    *,
    resume: bool = False,
    strict: bool = False,
) -> PredictSummary:
    """Predict every row of `source` (stdin when None) into `output` (stdout when None)."""
    if output is None and resume:
        raise EmoloomError("--resume needs --output FILE (stdout cannot be resumed)")
    partial = output.with_name(output.name + ".partial") if output is not None else None
    if partial is not None and partial.exists() and not resume:
        raise EmoloomError(f"{partial} exists from an interrupted run: pass --resume, or delete it")
    if output is not None and output.exists() and not resume:
        raise EmoloomError(f"{output} exists: choose another --output or delete it")
    if source is not None:  # before any .partial exists, so a bad --input leaves nothing
        check_file(source)
    if output is not None and output.exists() and resume and not (partial and partial.exists()):
        # Killed after the final rename: the job is done, and re-running it must say so, not
        # fail (a retry loop around `--resume` ends here).
        print(f"{output} is already complete; nothing to resume", file=sys.stderr)
        return _summary_of(output)
    skip = _resume_point(partial) if resume and partial is not None else 0
    out: IO[str] = partial.open("a", encoding="utf-8") if partial is not None else sys.stdout
    batch_size = decoder.config.batch_size
    rows = predicted = errors = parse_ok = calls = 0
    started = time.perf_counter()
    pending: list[tuple[int, Record | dict[str, Any]]] = []
    seen: dict[str, int] = {}

    def flush() -> None:
        nonlocal predicted, parse_ok, calls
        fault_point("predict.between_batches")
        todo = [(i, item) for i, item in enumerate(pending) if isinstance(item[1], Record)]
        results = decoder.decode([(item[1], label_set) for _, item in todo])  # type: ignore[misc]
        rendered: list[dict[str, Any]] = [item[1] for item in pending]  # type: ignore[misc]
        for (i, item), result in zip(todo, results, strict=True):
            rendered[i] = prediction_row(item[1], result, decoder.config)  # type: ignore[arg-type]
            predicted += 1
            parse_ok += result.parse_ok
            calls += result.model_calls
        _write(out, rendered)
        fault_point("predict.after_batch_append")
        pending.clear()

    try:
        for n, line in _input_lines(source):
            rows += 1
            if n <= skip:  # already written; still remember its id for duplicate checks
                try:
                    seen.setdefault(parse_record_line(line).id, n)
                except RecordError:
                    pass
                continue
            try:
                if not line.strip():
                    raise RecordError(None, "empty line")
                if any("\udc80" <= c <= "\udcff" for c in line):
                    raise RecordError(None, "invalid UTF-8")
                record = parse_record_line(line)
                if record.id in seen:
                    raise RecordError(
                        "id", f"duplicate id {record.id!r} (first at line {seen[record.id]})"
                    )
                seen[record.id] = n
                pending.append((n, record))
            except RecordError as err:
                where = str(source) if source is not None else "<stdin>"
                if strict:
                    raise DataError(where, n, err.field, err.message) from None
                errors += 1
                message = f"{err.field}: {err.message}" if err.field else err.message
                pending.append((n, error_row(n, line, message)))
            if len(pending) >= batch_size:
                flush()
        if pending:
            flush()
    finally:
        if partial is not None:
            out.close()
    if output is not None and partial is not None:
        fault_point("predict.before_rename")
        os.replace(partial, output)
    return PredictSummary(
        rows, predicted, errors, parse_ok, skip, time.perf_counter() - started, calls
    )
