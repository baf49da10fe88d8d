"""The one-line JSON contract shared by data loading, training and inference.

This module is the only place that knows the format. It has three parts:

- `Record`: an input row of contract JSONL (``id``, ``text``, optional ``context``, ``source``,
  gold ``labels``, gold or weak ``vad``, ``meta``), validated by pydantic.
- `render`: the canonical output line, e.g.
  ``{"labels":["disgust"],"vad":{"v":0.42,"a":0.21,"d":0.49},"rationale":"tone of displeasure"}``
  — labels in label-set order, VAD with exactly two decimals, rationale of at most 8 words.
- `parse`: a strict parser that scans the tail of generated text for the last JSON object and
  returns a `Prediction` or a `ParseFailure` with a typed reason (the paper's ParseOK).

`CONTRACT_VERSION` is recorded in every run; `schema()` is what ``emoloom schema`` prints.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from emoloom.errors import EmoloomError
from emoloom.labels import LabelSet

CONTRACT_VERSION = "1"
MAX_RATIONALE_WORDS = 8
# Generated text is scanned only in its last TAIL_CHARS characters: a contract line is a few
# hundred characters, and bounding the window keeps the scan linear on runaway generations.
TAIL_CHARS = 8192

# strict: a JSON number (int or float); strings and booleans are rejected, as are NaN and inf.
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]


class VAD(BaseModel):
    """Valence, arousal, dominance, each in [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Unit
    a: Unit
    d: Unit

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.v, self.a, self.d)


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


class Record(BaseModel):
    """One input row of contract JSONL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    context: tuple[str, ...] = ()
    source: str | None = None
    labels: tuple[str, ...] = ()
    vad: VAD | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    _check_id = field_validator("id", "text")(_non_blank)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(labels)) != len(labels):
            raise ValueError("labels repeat")
        return labels

    def to_line(self) -> str:
        """One JSON line (no trailing newline); fields left at their defaults are omitted."""
        return self.model_dump_json(exclude_defaults=True)


class RecordError(EmoloomError):
    """A contract line that is not a valid `Record`; `field` names the first offending field."""

    def __init__(self, field: str | None, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class _Constant(str):
    """NaN, Infinity or -Infinity kept as a marker, only to say where one was (see below)."""


_MARKING_DECODER = json.JSONDecoder(parse_constant=_Constant)
# JSON may escape a lone UTF-16 surrogate (\ud800); Python decodes it to a str that cannot
# be written as UTF-8, so a record holding one would crash every later stage.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Records are written back with pydantic, which refuses values nested ~250 deep; `meta` is
# small metadata, so refuse deep nesting when reading instead of crashing when writing.
MAX_NESTING = 64


def _find(
    obj: Any, bad: Callable[[Any], str | None], path: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """(dotted field, message) for the first value or object key of `obj` that `bad` has a
    message for, or for a value nested deeper than MAX_NESTING (named by its top field)."""
    if len(path) > MAX_NESTING:
        return path[0], f"nested deeper than {MAX_NESTING} levels"
    if (message := bad(obj)) is not None:
        return ".".join(path), message
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, value in items:
        where = (*path, str(key))
        if (message := bad(key)) is not None:
            return ".".join(where), message
        if (found := _find(value, bad, where)) is not None:
            return found
    return None


def _constant(value: Any) -> str | None:
    return f"{value} is not valid JSON" if isinstance(value, _Constant) else None


def _lone_surrogate(value: Any) -> str | None:
    if isinstance(value, str) and _SURROGATE.search(value):
        return "lone surrogate escape (not Unicode text)"
    return None


def parse_record_line(line: str) -> Record:
    """Parse one line of contract JSONL, raising `RecordError` naming the bad field."""
    try:
        obj = _DECODER.decode(line)
    except (ValueError, RecursionError) as err:
        # NaN/Infinity are not JSON, but the line is otherwise readable: name the field
        # holding one ("vad.v: NaN is not valid JSON"), as for any other bad value.
        try:
            marked = _MARKING_DECODER.decode(line)
        except (ValueError, RecursionError):
            marked = None
        if isinstance(marked, dict) and (found := _find(marked, _constant)) is not None:
            raise RecordError(*found) from None
        raise RecordError(None, f"invalid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise RecordError(None, f"expected a JSON object, got {type(obj).__name__}")
    if (found := _find(obj, _lone_surrogate)) is not None:
        raise RecordError(*found)
    try:
        return Record.model_validate(obj)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise RecordError(field, first["msg"]) from None


# ----------------------------------------------------------------------------------- output


@dataclass(frozen=True)
class Prediction:
    """A parsed (or to-be-rendered) output line."""

    labels: tuple[str, ...]
    vad: tuple[float, float, float]
    rationale: str | None = None
    ok: Literal[True] = True


class FailureReason(StrEnum):
    NO_JSON = "no_json"  # no '{' in the scanned tail
    INVALID_JSON = "invalid_json"  # braces, but nothing decodes to a JSON object
    MISSING_FIELD = "missing_field"
    UNEXPECTED_FIELD = "unexpected_field"
    WRONG_TYPE = "wrong_type"
    EMPTY_LABELS = "empty_labels"
    UNKNOWN_LABEL = "unknown_label"
    DUPLICATE_LABEL = "duplicate_label"
    TOO_MANY_LABELS = "too_many_labels"  # >1 label for a single-label set
    VAD_OUT_OF_RANGE = "vad_out_of_range"
    RATIONALE_TOO_LONG = "rationale_too_long"


@dataclass(frozen=True)
class ParseFailure:
    reason: FailureReason
    detail: str
    ok: Literal[False] = False


ParseResult = Prediction | ParseFailure


def _words(text: str) -> list[str]:
    return text.split()


def render(prediction: Prediction, label_set: LabelSet, *, rationale: bool = True) -> str:
    """The canonical contract line for `prediction`.

    Labels are deduplicated into label-set order and VAD printed with exactly two decimals
    (``0.40``, not ``0.4``): a fixed shape means a fixed token pattern for the model to learn.
    Raises `ValueError` for labels outside the set, VAD outside [0, 1] or a rationale of more
    than `MAX_RATIONALE_WORDS` words: the renderer never silently changes content.
    """
    unknown = [lab for lab in prediction.labels if lab not in label_set]
    if unknown:
        raise ValueError(f"labels {unknown} are not in label set {label_set.name!r}")
    if not prediction.labels:
        raise ValueError("a prediction needs at least one label")
    for name, value in zip("vad", prediction.vad, strict=True):
        if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            raise ValueError(f"vad.{name}={value!r} is not a number in [0, 1]")
    labels = ",".join(json.dumps(lab) for lab in label_set.canonical(prediction.labels))
    v, a, d = (f"{x:.2f}" for x in prediction.vad)
    line = f'{{"labels":[{labels}],"vad":{{"v":{v},"a":{a},"d":{d}}}'
    if rationale and prediction.rationale is not None:
        words = _words(prediction.rationale)
        if len(words) > MAX_RATIONALE_WORDS:
            raise ValueError(f"rationale has {len(words)} words, at most {MAX_RATIONALE_WORDS}")
        line += f',"rationale":{json.dumps(" ".join(words), ensure_ascii=False)}'
    return line + "}"


def _top_level_objects(text: str) -> tuple[list[dict[str, Any]], bool]:
    """All top-level JSON objects in `text`, left to right, and whether some '{' failed."""
    objects: list[dict[str, Any]] = []
    failed = False
    pos = text.find("{")
    while pos != -1:
        try:
            obj, end = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError):
            failed = True
            pos = text.find("{", pos + 1)
            continue
        objects.append(obj)  # raw_decode at '{' can only yield a dict
        pos = text.find("{", end)
    return objects, failed


def parse(text: str, label_set: LabelSet) -> ParseResult:
    """Find the last contract object in the tail of `text` and validate it strictly.

    Never raises: any input yields a `Prediction` (labels in canonical order, VAD rounded to
    two decimals) or a `ParseFailure` naming what is wrong.
    """
    tail = text[-TAIL_CHARS:]
    objects, failed = _top_level_objects(tail)
    if not objects:
        if failed:
            return ParseFailure(FailureReason.INVALID_JSON, "no complete JSON object")
        return ParseFailure(FailureReason.NO_JSON, "no JSON object in the output")
    # Prefer the last object that looks like an answer; else judge the last object.
    candidates = [o for o in objects if "labels" in o] or objects[-1:]
    return _validate(candidates[-1], label_set)


def _validate(obj: dict[str, Any], label_set: LabelSet) -> ParseResult:
    for key in ("labels", "vad"):
        if key not in obj:
            return ParseFailure(FailureReason.MISSING_FIELD, f"missing {key!r}")
    extra = sorted(set(obj) - {"labels", "vad", "rationale"})
    if extra:
        return ParseFailure(FailureReason.UNEXPECTED_FIELD, f"unexpected fields {extra}")

    labels = obj["labels"]
    if not isinstance(labels, list) or not all(isinstance(lab, str) for lab in labels):
        return ParseFailure(FailureReason.WRONG_TYPE, "'labels' must be a list of strings")
    if not labels:
        return ParseFailure(FailureReason.EMPTY_LABELS, "'labels' is empty")
    unknown = [lab for lab in labels if lab not in label_set]
    if unknown:
        return ParseFailure(
            FailureReason.UNKNOWN_LABEL, f"{unknown[:3]} not in label set {label_set.name!r}"
        )
    if len(set(labels)) != len(labels):
        return ParseFailure(FailureReason.DUPLICATE_LABEL, "a label repeats")
    if not label_set.multi_label and len(labels) > 1:
        return ParseFailure(
            FailureReason.TOO_MANY_LABELS, f"label set {label_set.name!r} is single-label"
        )

    vad = obj["vad"]
    if not isinstance(vad, dict):
        return ParseFailure(FailureReason.WRONG_TYPE, "'vad' must be an object")
    missing = [k for k in "vad" if k not in vad]
    if missing:
        return ParseFailure(FailureReason.MISSING_FIELD, f"missing vad.{missing[0]}")
    if set(vad) - {"v", "a", "d"}:
        return ParseFailure(FailureReason.UNEXPECTED_FIELD, "'vad' has fields besides v, a, d")
    values = []
    for key in "vad":
        x = vad[key]
        if isinstance(x, bool) or not isinstance(x, int | float):
            return ParseFailure(FailureReason.WRONG_TYPE, f"vad.{key} must be a number")
        if not (math.isfinite(x) and 0.0 <= x <= 1.0):
            return ParseFailure(FailureReason.VAD_OUT_OF_RANGE, f"vad.{key}={x} not in [0, 1]")
        values.append(round(float(x), 2))

    rationale = obj.get("rationale")
    if rationale is not None:
        if not isinstance(rationale, str):
            return ParseFailure(FailureReason.WRONG_TYPE, "'rationale' must be a string")
        if _SURROGATE.search(rationale):  # such a string cannot be written out as UTF-8
            return ParseFailure(
                FailureReason.INVALID_JSON, "'rationale' holds a lone surrogate escape"
            )
        words = _words(rationale)
        if len(words) > MAX_RATIONALE_WORDS:
            return ParseFailure(
                FailureReason.RATIONALE_TOO_LONG,
                f"rationale has {len(words)} words, at most {MAX_RATIONALE_WORDS}",
            )
        rationale = " ".join(words)
    return Prediction(label_set.canonical(labels), (values[0], values[1], values[2]), rationale)


# ----------------------------------------------------------------------------------- schema


def output_model(label_set: LabelSet | None = None) -> type[BaseModel]:
    """A pydantic model of the output line (labels restricted to `label_set` when given)."""
    label_type: Any = Literal[label_set.labels] if label_set else str  # type: ignore[valid-type]
    min_labels, max_labels = 1, (None if label_set is None or label_set.multi_label else 1)
    return create_model(
        "OutputLine",
        __config__=ConfigDict(extra="forbid"),
        labels=(list[label_type], Field(min_length=min_labels, max_length=max_labels)),
        vad=(VAD, ...),
        rationale=(
            str | None,
            Field(
                default=None,
                pattern=rf"^\s*(\S+(\s+\S+){{0,{MAX_RATIONALE_WORDS - 1}}})?\s*$",
                description=f"at most {MAX_RATIONALE_WORDS} words",
            ),
        ),
    )


def schema(label_set: LabelSet | None = None) -> dict[str, Any]:
    """JSON Schemas of the input record and the output line, with the contract version."""
    return {
        "contract_version": CONTRACT_VERSION,
        "input": Record.model_json_schema(),
        "output": output_model(label_set).model_json_schema(),
    }
