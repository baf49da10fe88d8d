"""Record → prompt, target → completion, and their token-level encoding.

One prompt per task, identical in training and inference: it names the label set and the
output format. The completion is the contract line (`emoloom.contract.render`) plus the
tokenizer's end-of-sequence token. `PromptEncoder` tokenises both, truncating the *prompt*
(oldest context turns first, then the end of the text) so the answer is never cut, and records
where the first label token and every VAD digit token sit, for the VAD and appraisal losses.

    enc = PromptEncoder(tokenizer, label_set, max_length=256)
    example = enc.encode(record, target=Prediction(("joy",), (0.9, 0.7, 0.6), "goal attained"))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from emoloom.contract import Prediction, Record, render
from emoloom.errors import EmoloomError
from emoloom.labels import LabelSet

PROMPT_VERSION = "2"
_NUMBER = re.compile(r'"([vad])":([0-9.]+)')


def render_prompt(
    text: str,
    context: Sequence[str],
    label_set: LabelSet,
    *,
    rationale: bool,
    list_labels: bool = False,
) -> str:
    """The task prompt: names the label set and the output format, then the input.

    Short on purpose: with KV-off decoding every generated token recomputes the whole prompt,
    and in training the prompt is most of each sequence, so its length sets both costs. The
    label vocabulary is learned from the answers; `list_labels` spells it out for zero-shot
    use of instruction-tuned models (about 60 more tokens for GoEmotions).
    """
    how_many = "one or more labels" if label_set.multi_label else "one label"
    keys = "labels, vad" + (", rationale" if rationale else "")
    lines = [f"Task: {label_set.name} emotion ({how_many}) and VAD. Reply JSON: {keys}."]
    if list_labels:
        lines.append(f"Labels: {', '.join(label_set.labels)}.")
    if context:
        lines.append("Context: " + " | ".join(context))
    lines.append(f"Text: {text}")
    return "\n".join(lines)


@dataclass
class NumberToken:
    index: int  # position in input_ids
    group: str  # candidate set: "int" (the 0/1 before the point) or the digit count "1", "2", ...
    scale: float  # its place value: token value × scale is its share of the number


@dataclass
class Encoded:
    input_ids: list[int]
    prompt_len: int  # input_ids[prompt_len:] is the completion (supervised)
    label_index: int | None = None  # index of the first label token (None without a target)
    numbers: list[list[NumberToken]] = field(default_factory=list)  # per v, a, d
    vad_target: tuple[float, float, float] | None = None
    truncated: bool = False

    @property
    def supervised(self) -> int:
        return len(self.input_ids) - self.prompt_len


class DigitVocab:
    """Candidate digit tokens with their values, per group.

    The VAD loss takes an expectation over these: a tokenizer that splits numbers digit by
    digit (Qwen) uses group "1" at every fraction position; MiniLM's WordPiece spells "0.42" as
    0 / . / 42, so the fraction is one group-"2" token; Llama 3 groups up to three digits. The
    integer part of a VAD value can only be 0 or 1: group "int" holds just those two tokens.
    """

    def __init__(self, tokenizer: Any) -> None:
        groups: dict[str, tuple[list[int], list[int]]] = {}
        for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
            if token.isascii() and token.isdigit():
                names = [str(len(token))] + (["int"] if token in ("0", "1") else [])
                for name in names:
                    ids, values = groups.setdefault(name, ([], []))
                    ids.append(token_id)
                    values.append(int(token))
        self.ids = {k: torch.tensor(v[0]) for k, v in groups.items()}
        self.values = {k: torch.tensor(v[1], dtype=torch.float32) for k, v in groups.items()}


class PromptEncoder:
    """Tokenises prompts and completions for one tokenizer and one label set."""

    def __init__(
        self,
        tokenizer: Any,
        label_set: LabelSet,
        *,
        max_length: int = 256,
        rationale: bool = True,
        max_context_turns: int = 3,
        list_labels: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.list_labels = list_labels
        self.label_set = label_set
        self.max_length = max_length
        self.rationale = rationale
        self.max_context_turns = max_context_turns
        eos = (
            tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        )
        if eos is None:
            raise EmoloomError("the tokenizer has neither an eos nor a sep token to end answers")
        self.eos_id: int = eos
        self.use_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.label_token_ids = self._label_first_tokens()

    # ------------------------------------------------------------------------ prompt side

    def prompt_ids(self, text: str, context: Sequence[str]) -> list[int]:
        prompt = render_prompt(
            text, context, self.label_set, rationale=self.rationale, list_labels=self.list_labels
        )
        if self.use_chat_template:
            chat = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            return self.tokenizer(chat, add_special_tokens=False)["input_ids"]
        return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]

    def fit_prompt(self, record: Record, budget: int) -> tuple[list[int], bool]:
        """Prompt ids within `budget` tokens: drop the oldest context turns first, then words
        from the end of the text. Returns (ids, truncated)."""
        context = list(record.context[-self.max_context_turns :]) if self.max_context_turns else []
        words = record.text.split()
        # A word is at least one token, so a text of more than `budget` words cannot fit: go
        # straight to cutting it, without tokenising it whole (seconds for a 1 MB text).
        if len(words) <= budget:
            ids = self.prompt_ids(record.text, context)
            if len(ids) <= budget:
                return ids, len(context) < len(record.context)
            while context:
                context.pop(0)
                ids = self.prompt_ids(record.text, context)
                if len(ids) <= budget:
                    return ids, True
        lo, hi = 0, min(len(words), budget)  # largest word count that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(self.prompt_ids(" ".join(words[:mid]), [])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        ids = self.prompt_ids(" ".join(words[:lo]), [])
        if len(ids) > budget:
            raise EmoloomError(
                f"prompt.max_length={self.max_length} leaves {budget} tokens for the prompt, "
                f"but the instructions alone take {len(ids)}: raise prompt.max_length"
            )
        return ids, True

    # -------------------------------------------------------------------- completion side

    def completion_ids(self, lines: Sequence[str]) -> list[list[int]]:
        """Completion ids (line + eos) of already rendered answer lines, tokenised as one
        batch: the same ids as `completion` gives one line at a time."""
        if not lines:
            return []
        # The Rust encoder directly when it holds no truncation or padding state (a call
        # through the wrapper costs ~0.8 ms of Python; decoding makes hundreds per batch).
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and backend.truncation is None and backend.padding is None:
            encodings = backend.encode_batch(list(lines), add_special_tokens=False)
            return [[*enc.ids, self.eos_id] for enc in encodings]
        batch = self.tokenizer(list(lines), add_special_tokens=False)["input_ids"]
        return [ids + [self.eos_id] for ids in batch]

    def completion(self, target: Prediction) -> tuple[list[int], int, list[list[NumberToken]]]:
        """Completion ids (line + eos), the index of the first label token within them, and
        the digit tokens of each VAD number (indices relative to the completion)."""
        line = render(target, self.label_set, rationale=self.rationale)
        enc = self.tokenizer(line, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        # the token that covers the label's first character (byte-level BPEs may glue the
        # opening quote to it; the same glue applies to every label, so scores stay comparable)
        label_start = line.index('["') + 2
        label_index = next(i for i, (s, e) in enumerate(offsets) if s <= label_start < e)
        numbers = []
        for match in _NUMBER.finditer(line):
            start, end = match.span(2)
            dot = line.index(".", start, end)
            tokens = []
            for i, (s, e) in enumerate(offsets):
                if s >= end or e <= start:
                    continue
                piece = line[s:e]
                if piece == ".":
                    continue
                if not piece.isdigit() or s < start or e > end or s < dot < e:
                    tokens = []  # a token mixing digits with '.', quotes, ...: no digit targets
                    break
                if e <= dot:
                    group, scale = ("int" if e - s == 1 else str(e - s)), 10.0 ** (dot - e)
                else:
                    group, scale = str(e - s), 10.0 ** -(e - dot - 1)
                tokens.append(NumberToken(i, group, scale))
            numbers.append(tokens)
        return ids + [self.eos_id], label_index, numbers

    def encode(self, record: Record, target: Prediction | None = None) -> Encoded:
        """Prompt (+ completion when `target` is given) as one token sequence."""
        if target is None:
            ids, truncated = self.fit_prompt(record, self.max_length)
            return Encoded(ids, len(ids), truncated=truncated)
        completion, label_index, numbers = self.completion(target)
        budget = self.max_length - len(completion)
        if budget < 1:
            raise EmoloomError(
                f"prompt.max_length={self.max_length} is shorter than the answer alone "
                f"({len(completion)} tokens)"
            )
        prompt, truncated = self.fit_prompt(record, budget)
        offset = len(prompt)
        shifted = [[NumberToken(t.index + offset, t.group, t.scale) for t in n] for n in numbers]
        encoded = Encoded(
            prompt + completion,
            offset,
            label_index + offset,
            shifted,
            target.vad,
            truncated,
        )
        # Never train on nothing: a sequence whose answer was cut would silently teach no-ops.
        assert encoded.supervised >= 1, record.id
        return encoded

    def prefix(self, record: Record) -> Encoded:
        """Prompt + the fixed answer opening up to the first label token (for label scoring:
        the model's next-token distribution here is its label distribution); `prompt_len`
        marks where the answer opening starts."""
        probe = Prediction((self.label_set.labels[0],), (0.5, 0.5, 0.5), None)
        completion, label_index, _ = self.completion(probe)
        prompt, truncated = self.fit_prompt(record, self.max_length - label_index)
        return Encoded(prompt + completion[:label_index], len(prompt), truncated=truncated)

    def _label_first_tokens(self) -> torch.Tensor:
        """The first token of each label as it appears inside the answer line."""
        firsts = []
        for label in self.label_set.labels:
            ids, index, _ = self.completion(Prediction((label,), (0.5, 0.5, 0.5), None))
            firsts.append(ids[index])
        return torch.tensor(firsts)
