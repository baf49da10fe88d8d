"""Greedy decoding of contract lines: KV-off by default, constrained or free.

    decoder = Decoder(backbone.lm, tokenizer, encoder, DecodeConfig(mode="constrained"))
    results = decoder.decode(records)        # one DecodeResult per record, in order

**Constrained** (the default for evaluation). A valid answer is a choice of labels, three
numbers in 0.00–1.00 and a rationale from the verifier's phrase set; its tokens are whatever
the tokenizer makes of the canonical line (`contract.render`). For each decision the decoder
enumerates the options, tokenises a representative full line per option (twice, with different
fillers for the later slots, so nothing that depends on a later choice is committed early),
and walks the tokens: where every live option agrees on the next token it is appended without
calling the model (the JSON skeleton, the rest of a label once its first token is chosen, the
".00" of 1.00); where they differ, one forward pass scores only the differing tokens and the
argmax is kept. Where a decision's outcome is predictable (the label list closing after one
label; the integer digit 0 of a VAD number; the rationale the chosen labels' appraisal profiles
imply) the decoder speculates: it appends the guessed token and the forced tokens after it, so
the same forward pass also scores the next decision. Causal attention makes those logits what a
separate call would compute; a wrong guess only drops the rest of the draft.
KV-off drafts look ahead: past a decision with no rule it drafts some value anyway (a VAD
number's middle, the live rationale the labels' appraisal profile agrees with most), so one call
scores the whole answer; where a guess misses, the model's own choices at the later decisions,
made under the slightly wrong prefix, become the next call's guesses (`_State.hints`), and the
later numbers and rationale hardly depend on the exact earlier ones. The trained MiniLM decoder
needs about 3.5 model calls per example (10 with one decision per call). Options are
tokenised as a shared head plus per-slot tails where the tokenizer splits the line there
(`AnswerSpace._split`, checked, with a whole-line fallback).
The answer is then rendered from the choices by the contract module — never detokenised — so
ParseOK is 1 by construction for any model, random weights included.

VAD numbers (``DecodeConfig.vad``): "mean" (default) takes, at each number token, the option
nearest the expected value of the model's distribution over the candidate tokens (a candidate
counts with the mean of the numbers it still allows), the quantity the VAD-preserving loss
trains; "greedy" takes the argmax. With a bidirectional prompt (`model.prompt_attention`) the
answer is still causal, so drafting stays exact.

VAD under label uncertainty (``DecodeConfig.vad_hypotheses`` K > 1): the model writes its VAD
after its labels, conditioned on them, so a wrong label drags the numbers with it. With K > 1
the decoder reads p(c), the distribution over the label set's first tokens at the first label
decision (the one `scoring.label_probs` and calibrated decoding read), decodes the VAD numbers
again with each of the K most likely single labels written in (`decode(labels=...)`, stopping
after the third number), and writes Σ_k w_k·VAD_k with w ∝ p(c_k): the expected VAD under the
model's own label belief, which is what minimises squared error. Labels and rationale are those
of the ordinary decode; the hypotheses' model calls are counted in `model_calls`.

This is a small hand-written processor rather than a grammar library (outlines, xgrammar,
lm-format-enforcer): those constrain *text*, and the default backbone's uncased WordPiece does
not round-trip JSON (`{ " labels " : [` ...), so no text grammar matches what it emits; and
skipping the model on forced tokens is the point of the exercise under KV-off decoding.

**Free** (the paper's protocol): plain greedy generation over the whole vocabulary until the
JSON object closes, the end-of-sequence token or `max_new_tokens`; the text goes through the
contract's tail-scanning parser, which reports ParseOK and the failure reason honestly.

KV-off (``use_cache=False``) recomputes the whole sequence at every model call and is the
default; `use_cache=True` is KV-on: constrained decoding computes the prompts' keys and values
once per batch and then feeds each row only its new answer tokens (`_AnswerCache`); free
decoding keeps a full per-example cache (batch of one).
Batches are right-padded: each row's logits are read at its own last real position, so padding
never enters a row's computation and positions need no adjustment.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from emoloom.appraisal import (
    atom_targets,
    rationale_agreement,
    rationale_from_atoms,
    rationale_vocabulary,
)
from emoloom.calibration import decide
from emoloom.contract import ParseFailure, Prediction, Record, parse, render
from emoloom.errors import EmoloomError
from emoloom.losses import label_distribution
from emoloom.modeling import EmoLoomLM
from emoloom.prompting import PromptEncoder

NUMBERS = tuple(round(i / 100, 2) for i in range(101))
# Batches that `evaluate` hands to `Decoder.decode` at once, for it to sort by prompt length;
# it also sets how often a full evaluation appends to its log (`predict` flushes every batch).
WINDOW_BATCHES = 4
_CLOSE = "<close>"


@dataclass(frozen=True)
class DecodeConfig:
    mode: str = "constrained"  # constrained | free
    use_cache: bool = False  # KV-off by default: the paper's protocol
    max_new_tokens: int = 96  # free mode's bound on runaway generations
    batch_size: int = 16
    # How constrained decoding picks each VAD number: "mean", the number nearest the expected
    # value of the model's distribution over number tokens (what the VAD loss trains and what
    # RMSE rewards), or "greedy", the most likely token at every step (the paper's rule).
    # Labels and rationale are always greedy; free decoding is always greedy.
    vad: str = "mean"
    # How constrained decoding picks the labels: "greedy", token by token (the paper's rule),
    # or "calibrated", per-label thresholds on the first label decision's distribution, fitted
    # on up to `calibration_rows` dev rows of the evaluated corpus (`emoloom.calibration`).
    labels: str = "greedy"
    calibration_rows: int = 6000
    # VAD averaged over the K most likely first labels (weights p(c)); 1: the VAD the model
    # writes after its own labels (the paper's rule). Each hypothesis costs a VAD-only decode.
    vad_hypotheses: int = 1

    def __post_init__(self) -> None:
        if self.mode not in ("constrained", "free"):
            raise EmoloomError(f"decode.mode={self.mode!r}; use constrained or free")
        if self.vad not in ("mean", "greedy"):
            raise EmoloomError(f"decode.vad={self.vad!r}; use mean or greedy")
        if self.labels not in ("greedy", "calibrated"):
            raise EmoloomError(f"decode.labels={self.labels!r}; use greedy or calibrated")
        if self.labels == "calibrated" and self.mode != "constrained":
            raise EmoloomError("decode.labels=calibrated needs decode.mode=constrained")
        if self.calibration_rows < 1:
            raise EmoloomError("decode.calibration_rows must be >= 1")
        if self.vad_hypotheses < 1:
            raise EmoloomError(f"decode.vad_hypotheses={self.vad_hypotheses} must be >= 1")
        if self.vad_hypotheses > 1 and self.mode != "constrained":
            raise EmoloomError("decode.vad_hypotheses > 1 needs decode.mode=constrained")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise EmoloomError("decode.max_new_tokens and decode.batch_size must be >= 1")


@dataclass
class DecodeResult:
    prediction: Prediction | None
    line: str | None  # the canonical contract line (None when a free generation failed)
    raw: str  # what the model produced (constrained: the same line)
    parse_ok: bool
    failure: str | None
    model_calls: int
    generated_tokens: int
    forced_tokens: int
    seconds: float


@dataclass
class _State:
    """One example's progress through the answer's decisions."""

    prompt: list[int]
    completion: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    closed: bool = False
    numbers: list[float] = field(default_factory=list)
    rationale: str | None = None
    candidates: list[int] | None = None  # token ids to score at the next model call
    planned: tuple[str, ...] | None = None  # labels chosen at once (calibrated, or given)
    vad_only: bool = False  # done after the third VAD number (VAD hypotheses)
    first_probs: torch.Tensor | None = None  # p(c) at the first label decision
    live: list | None = None  # the pending decision's options consistent with `completion`
    live_from: int = 0  # ... checked up to this many completion tokens
    in_slot: int = 0  # tokens chosen so far within the pending decision's slot
    # The model's own choices at drafted decisions past a rejected guess, by (slot, index
    # in slot): the next draft's guesses there (`AnswerSpace.guess`).
    hints: dict[tuple[str, int, int], int] = field(default_factory=dict)
    done: bool = False
    calls: int = 0
    forced: int = 0
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0


class AnswerSpace:
    """The valid answers of one label set for one tokenizer, as token sequences (cached)."""

    MAX_LINES = 200_000  # tokenised lines kept (about 100 MB at most)

    def __init__(self, encoder: PromptEncoder, thresholds: Sequence[float] | None = None) -> None:
        self.encoder = encoder
        self.thresholds = thresholds  # calibrated label choice (`emoloom.calibration.decide`)
        self.label_set = encoder.label_set
        self.rationale = encoder.rationale
        self.rationales = rationale_vocabulary() if encoder.rationale else (None,)
        self._cache: dict[str, tuple[int, ...]] = {}
        self._options: dict[tuple, tuple[list[tuple[Any, list[tuple[int, ...]]]], int]] = {}
        # per slot (VAD number 0-2, rationale 3): whether the tokenizer splits the line where
        # the slot starts, checked on the slot's first enumeration (`_enumerate`)
        self._splits: dict[int, bool] = {}
        self._tails: dict[int, list[tuple[int, ...]]] = {}  # per slot, in `_enumerate`'s order

    def tokens(
        self, labels: Sequence[str], numbers: Sequence[float], rationale: str | None
    ) -> tuple[int, ...]:
        return self.many([(labels, numbers, rationale)])[0]

    def many(
        self, answers: Sequence[tuple[Sequence[str], Sequence[float], str | None]]
    ) -> list[tuple[int, ...]]:
        """Completion token ids of each (labels, numbers, rationale) answer. Lines not seen
        before are tokenised in one batched call (the fast tokenizer's Rust batch encoder):
        one call per line cost 60% of constrained decoding's time in Python overhead."""
        return self._ids([self._render(*answer) for answer in answers])

    def _render(self, labels: Sequence[str], nums: Sequence[float], rationale: str | None) -> str:
        pred = Prediction(tuple(labels), (nums[0], nums[1], nums[2]), rationale)
        return render(pred, self.label_set, rationale=self.rationale)

    def _ids(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """`completion_ids` of each text (a line, or a line's head or tail), cached."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self.MAX_LINES:
                self._cache.clear()  # bounded memory; entries are cheap to recompute
                missing = list(dict.fromkeys(texts))
            for text, ids in zip(missing, self.encoder.completion_ids(missing), strict=True):
                self._cache[text] = tuple(ids)
        return [self._cache[text] for text in texts]

    @staticmethod
    def _cut(line: str, slot: int) -> int:
        """Where VAD number `slot` (0-2) starts in a rendered line, or (3) where the last
        one ends: the numbers are fixed-width (``0.62``) between fixed keys."""
        start = line.index('],"vad":{"v":') + len('],"vad":{"v":')
        width = len('0.00,"a":')
        return start + slot * width if slot < 3 else start + 2 * width + len("0.00")

    def _split(self, plan: list[tuple[Any, list[tuple]]], slot: int) -> tuple[list, int]:
        """Token ids of every answer in `plan` (the options of VAD number `slot`, or 3: the
        rationale) and how many leading ids they all share with the decided part.

        Each is head + tail: the head (labels and numbers decided so far) is the same for all of
        them, and the tails (the slot's option, fillers after it) are the same for every
        example, so a new prefix costs one short tokenisation instead of one per option (202
        for a number). Exact only where the tokenizer splits the line at the cut (WordPiece
        and byte-level BPE split between ':' and a digit, and between a digit and '}'): the
        slot's first enumeration checks that against whole-line tokenisation and keeps whole
        lines for good if any differs."""
        if self._splits.get(slot) is False:
            return self._ids([self._render(*a) for _, reps in plan for a in reps]), 0
        first = self._render(*plan[0][1][0])
        cut = self._cut(first, slot)
        head = self._ids([first[:cut]])[0][:-1]  # without the eos `completion_ids` appends
        tails = self._tails.get(slot)
        if tails is None:
            lines = [self._render(*a) for _, reps in plan for a in reps]
            tails = self._ids([line[cut:] for line in lines])
            self._splits[slot] = [head + t for t in tails] == self._ids(lines)
            if not self._splits[slot]:
                return self._ids(lines), 0
            self._tails[slot] = tails
        return [head + t for t in tails], len(head)

    def whole_lines(self) -> None:
        """Tokenise every option as a whole line from now on (`_Resplit`)."""
        self._splits = dict.fromkeys(range(4), False)
        self._tails.clear()
        self._options.clear()

    def _fills(self, s: _State) -> list[tuple[list[float], str | None]]:
        """Two fillers for undecided slots that differ everywhere they can."""
        n = len(s.numbers)
        low = s.numbers + [0.0] * (3 - n)
        high = s.numbers + [1.0] * (3 - n)
        r_low = s.rationale if s.rationale is not None else self.rationales[0]
        r_high = s.rationale if s.rationale is not None else self.rationales[-1]
        return [(low, r_low), (high, r_high)]

    def options(self, s: _State) -> tuple[list[tuple[Any, list[tuple[int, ...]]]], int]:
        """(option, representative token sequences) for the next undecided slot, and how many
        leading tokens all of them share with the decided part (memoised by the decisions taken
        so far: examples that chose alike share the work)."""
        key = (tuple(s.labels), s.closed, tuple(s.numbers), s.rationale)
        found = self._options.get(key)
        if found is None:
            found = self._enumerate(s)
            if len(self._options) < 50_000:
                self._options[key] = found
        return found

    def _enumerate(self, s: _State) -> tuple[list[tuple[Any, list[tuple[int, ...]]]], int]:
        fills = self._fills(s)
        # (option, the answers standing for it); all answers are tokenised in one batch
        plan: list[tuple[Any, list[tuple[Sequence[str], Sequence[float], str | None]]]] = []
        if not s.closed:
            labels = self.label_set.labels
            last = labels.index(s.labels[-1]) if s.labels else -1
            room = self.label_set.multi_label or not s.labels
            if s.labels:
                plan.append((_CLOSE, [(s.labels, nums, r) for nums, r in fills]))
            if room:
                for label in labels[last + 1 :]:
                    chosen = [*s.labels, label]
                    reps = [(chosen, nums, r) for nums, r in fills]
                    later = labels.index(label) + 1
                    if self.label_set.multi_label and later < len(labels):  # "then another"
                        reps.append(([*chosen, labels[-1]], *fills[0]))
                    plan.append((label, reps))
        elif len(s.numbers) < 3:
            for x in NUMBERS:
                reps = []
                for nums, r in fills:
                    nums = [*s.numbers, x] + nums[len(s.numbers) + 1 :]
                    reps.append((s.labels, nums, r))
                plan.append((x, reps))
        else:
            plan = [(r, [(s.labels, s.numbers, r)]) for r in self.rationales]
        shared = 0
        if s.closed:
            tokens, shared = self._split(plan, len(s.numbers))
        else:
            tokens = self.many([answer for _, reps in plan for answer in reps])
        ids = iter(tokens)
        return [(option, [next(ids) for _ in reps]) for option, reps in plan], shared

    def decide(self, s: _State, option: Any) -> None:
        s.live, s.in_slot = None, 0
        if not s.closed:
            if option == _CLOSE:
                s.closed = True
            else:
                s.labels.append(option)
                if not self.label_set.multi_label:
                    s.closed = True
        elif len(s.numbers) < 3:
            s.numbers.append(option)
        else:
            s.rationale = option

    def _live(self, s: _State) -> list[tuple[Any, list[tuple[int, ...]]]]:
        """The options of the next slot still consistent with the tokens emitted so far."""
        n = len(s.completion)
        if s.live is None:  # a new decision: check every option against the completion
            options, start = self.options(s)
            if s.planned is not None and not s.closed:  # the labels are chosen: write them
                k = len(s.labels)
                planned = s.planned[k] if k < len(s.planned) else _CLOSE
                options = [(o, reps) for o, reps in options if o == planned]
        else:  # the same decision: only the tokens appended since the last check can rule out
            start, options = s.live_from, s.live
        if start < n:
            done = tuple(s.completion[start:])
            options = [(o, reps) for o, reps in options if all(r[start:n] == done for r in reps)]
        # a new decision's options may share tokens not yet emitted (`options`): no check there
        s.live, s.live_from = options, max(n, start)
        return options

    def complete(self, s: _State) -> bool:
        return s.closed and len(s.numbers) == 3 and (s.rationale is not None or not self.rationale)

    def advance(self, s: _State) -> None:
        """Append forced tokens and take forced decisions until the model must be asked (sets
        `s.candidates`) or the answer is complete (sets `s.done`)."""
        while True:
            if s.vad_only and s.closed and len(s.numbers) == 3:
                s.done, s.candidates = True, None
                return
            if self.complete(s):
                final = self.tokens(s.labels, s.numbers, s.rationale)
                if tuple(s.completion) != final[: len(s.completion)]:
                    if any(self._splits.values()):
                        raise _Resplit
                    raise EmoloomError("constrained decoding drifted from the line's tokens")
                s.forced += len(final) - len(s.completion)
                s.completion = list(final)
                s.done, s.candidates = True, None
                return
            n = len(s.completion)
            live = self._live(s)
            if not live:  # cannot happen for a consistent tokenizer; fail loudly, not silently
                if any(self._splits.values()):
                    raise _Resplit
                raise EmoloomError("constrained decoding lost every option (tokenizer drift)")
            if len(live) == 1:
                self.decide(s, live[0][0])
                continue
            if n < s.live_from:  # a token every option shares (`_live`)
                s.completion.append(live[0][1][0][n])
                s.forced += 1
                continue
            nexts = sorted({rep[n] for _, reps in live for rep in reps if len(rep) > n})
            if len(nexts) == 1:
                s.completion.append(nexts[0])
                s.forced += 1
                continue
            s.candidates = nexts
            return

    def choose(
        self, s: _State, logits: torch.Tensor, *, count: bool = True, vad: str = "greedy"
    ) -> None:
        assert s.candidates is not None
        if not s.closed and not s.labels and s.in_slot == 0 and s.first_probs is None:
            probs = label_distribution(logits[None].float(), self.encoder.label_token_ids)
            s.first_probs = probs[0]
        if self.thresholds is not None and s.planned is None and not s.closed and not s.labels:
            self._plan_labels(s, logits)
        elif vad == "mean" and s.closed and len(s.numbers) < 3:
            s.completion.append(self._nearest_mean(s, logits[torch.tensor(s.candidates)]))
        else:
            ids = torch.tensor(s.candidates)
            s.completion.append(int(ids[int(torch.argmax(logits[ids]))]))
        s.in_slot += 1
        s.calls += int(count)
        s.candidates = None

    def _plan_labels(self, s: _State, logits: torch.Tensor) -> None:
        """Calibrated label choice: the whole label set from p(c) at the first label decision
        (the distribution `scoring.label_probs` reads), then its first token; the remaining
        label tokens and the list's end are forced (`_live` keeps only the planned option)."""
        assert self.thresholds is not None
        assert s.first_probs is not None  # read by `choose` at this decision
        probs = s.first_probs[None].double().numpy()
        chosen = decide(probs, self.thresholds, self.label_set.multi_label)[0]
        s.planned = tuple(lab for lab, on in zip(self.label_set.labels, chosen, strict=True) if on)
        s.live = None
        ((_, reps),) = self._live(s)
        s.completion.append(reps[0][len(s.completion)])

    def _nearest_mean(self, s: _State, scores: torch.Tensor) -> int:
        """The candidate token leading to the VAD number nearest the expected value. Each
        candidate token stands for the numbers still live that continue with it (MiniLM: "0"
        for 0.00-0.99 then one token per fraction; Qwen: one digit at a time) and counts
        with their mean; at the last token of a number that mean is the number itself."""
        assert s.candidates is not None
        n = len(s.completion)
        covered: dict[int, set[float]] = {}
        for x, reps in self._live(s):
            for rep in reps:
                covered.setdefault(rep[n], set()).add(x)
        probs = torch.softmax(scores.double(), dim=-1).tolist()
        means = [sum(covered[t]) / len(covered[t]) for t in s.candidates]
        expected = sum(p * m for p, m in zip(probs, means, strict=True))
        nearest = min((abs(x - expected), x, t) for t in s.candidates for x in covered[t])
        return nearest[2]

    @staticmethod
    def slot(s: _State) -> tuple[str, int, int]:
        """The pending decision: (part of the answer, its index, tokens chosen within it)."""
        if not s.closed:
            return ("labels", len(s.labels), s.in_slot)
        if len(s.numbers) < 3:
            return ("vad", len(s.numbers), s.in_slot)
        return ("rationale", 0, s.in_slot)

    def guess(self, s: _State, lookahead: bool = False) -> int | None:
        """A likely outcome of the pending decision, worth speculating on, or None.

        First the model's own choice at this decision in an earlier call's draft (`s.hints`:
        made after a rejected guess, so under a slightly different prefix; the later parts of
        an answer hardly depend on the exact earlier numbers). Then fixed rules: closing the
        label list (most rows carry one label), the integer digit of a VAD number (every value
        below 1.00 shares it; if the model picks 1, the rest of 1.00 is forced anyway) and the
        rationale of the chosen labels' mean appraisal profile (the verifier that made the
        training rationales learnt from those profiles), or once that is ruled out the live
        rationale the profile agrees with most. With `lookahead`, a VAD number with neither
        gets the middle value: any value lets the same call give its opinion on the numbers
        and rationale after it, which the next call then verifies."""
        assert s.candidates is not None
        hint = s.hints.get(self.slot(s))
        if hint is not None and hint in s.candidates:
            return hint
        n = len(s.completion)
        live = self._live(s)
        if not s.closed:
            if s.labels:
                close = [reps for opt, reps in live if opt == _CLOSE]
                if close and len(close[0][0]) > n:
                    return close[0][0][n]
            return None
        if len(s.numbers) < 3:
            below = {rep[n] for opt, reps in live if opt < 1.0 for rep in reps if len(rep) > n}
            if len(below) == 1 and len(live) > 2:
                return below.pop()
            if lookahead:
                middle = min(live, key=lambda option: abs(option[0] - 0.5))
                return middle[1][0][n] if len(middle[1][0]) > n else None
            return None
        if self.rationale:
            atoms = atom_targets(s.labels)
            typical = rationale_from_atoms(atoms)
            for opt, reps in live:
                if opt == typical and len(reps[0]) > n:
                    return reps[0][n]
            # the typical one is out: the live one the profile agrees with most
            ranked = [(opt, reps) for opt, reps in live if len(reps[0]) > n]
            if ranked:
                best = max(ranked, key=lambda option: rationale_agreement(option[0], atoms))
                return best[1][0][n]
        return None

    def draft(self, s: _State, lookahead: bool = False) -> tuple[list[int], list[_Step]]:
        """Speculate through the guessable decisions after `s`'s pending one. Returns the
        drafted completion up to the last decision and, per decision, (its position, its
        candidates, the guess, the drafted state at it); the last decision has no guess, or the
        draft ends complete.

        Under causal attention the logits at a position do not depend on later tokens, so one
        KV-off model call over the draft scores every decision in it exactly as separate calls
        would, for as long as the guesses are the model's own argmax."""
        t = replace(
            s, completion=list(s.completion), labels=list(s.labels), numbers=list(s.numbers)
        )
        steps: list[_Step] = []
        while t.candidates is not None:
            g = self.guess(t, lookahead)
            at = replace(
                t, completion=list(t.completion), labels=list(t.labels), numbers=list(t.numbers)
            )
            steps.append((len(t.completion), t.candidates, g, at))
            if g is None:
                break
            t.completion.append(g)
            t.candidates = None
            t.in_slot += 1
            self.advance(t)
        # the tokens after the last decision (the rest of the line, forced) inform no logit
        return t.completion[: steps[-1][0]], steps


_Step = tuple[int, list[int], int | None, _State]


class _Resplit(Exception):
    """An answer's tokens were not the tokens of its whole line: the tokenizer joined a head
    and tail `AnswerSpace._split` assumed apart. The batch is decoded again on whole lines."""


_Draft = tuple[list[int], list[_Step]]


def _vocab(drafts: list[_Draft], spaces: list[AnswerSpace]) -> torch.Tensor:
    """The token ids any drafted decision may choose, and the first label decision's label
    tokens (calibrated labels read p(c) over them): the only logits a step reads."""
    ids: set[int] = set()
    for (_, steps), space in zip(drafts, spaces, strict=True):
        for _, candidates, _, at in steps:
            ids.update(candidates)
            if not at.closed and not at.labels:
                ids.update(space.encoder.label_token_ids.tolist())
    return torch.tensor(sorted(ids))


class _AnswerCache:
    """KV-on for constrained decoding, batched and incremental. The prompts' keys and values
    are computed once per batch; every later call feeds each row only the drafted tokens its
    cache has not confirmed yet (`logits`), and `commit` keeps the ones the step accepted.

    Rows are ragged: each call appends a block as wide as the longest row's new tokens, so a
    row's cache holds holes (padding, guesses the model rejected). Holes are never cropped,
    only masked: `valid` marks the positions a row attends to, and position ids count a row's
    confirmed tokens only, so every logit is what the row alone, KV-off, would get. Rows that
    finish leave the cache (`keep`)."""

    def __init__(self, lm: EmoLoomLM, states: list[_State], pad_id: int) -> None:
        self.lm = lm
        params = inspect.signature(lm.body.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self.rows = list(range(len(states)))
        width = max(len(s.prompt) for s in states)
        ids = torch.full((len(states), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(states), width), dtype=torch.long)
        for b, s in enumerate(states):
            ids[b, : len(s.prompt)] = torch.tensor(s.prompt)
            mask[b, : len(s.prompt)] = 1
        self.prompt_len = mask.sum(dim=1)
        self.pad_id = pad_id
        out = lm.body(
            input_ids=ids,
            attention_mask=lm.attention(mask, self.prompt_len),
            use_cache=True,
        )
        self.kv = out["cache"] if "cache" in out else out["past_key_values"]
        self.valid = mask.bool()  # (rows, cache length): what each row may attend to
        self.cached = torch.zeros(len(states), dtype=torch.long)  # confirmed answer tokens
        # the hidden state after each row's last confirmed token (predicts the next one)
        self.last = out[0][torch.arange(len(states)), self.prompt_len - 1]
        self._fed: list[list[int]] = []
        self._hidden: torch.Tensor | None = None

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (indices into the batch the cache was built for)."""
        if rows == self.rows:
            return
        index = torch.tensor([self.rows.index(r) for r in rows])
        self.kv.batch_select_indices(index)
        self.prompt_len, self.last = self.prompt_len[index], self.last[index]
        self.valid, self.cached = self.valid[index], self.cached[index]
        self.rows = list(rows)

    def logits(self, drafts: list[_Draft], vocab: torch.Tensor) -> torch.Tensor:
        """Logits for every drafted decision, in order (one model call over the new tokens)."""
        self._fed = [tokens[int(c) :] for (tokens, _), c in zip(drafts, self.cached, strict=True)]
        n, width = len(drafts), max(map(len, self._fed))
        self._hidden = None
        if width:
            ids = torch.full((n, width), self.pad_id, dtype=torch.long)
            lengths = torch.tensor([len(new) for new in self._fed])
            for b, new in enumerate(self._fed):
                ids[b, : len(new)] = torch.tensor(new, dtype=torch.long)
            j = torch.arange(width)
            positions = (self.prompt_len + self.cached)[:, None] + j[None, :]
            see_new = (j[None, None, :] <= j[None, :, None]) & (
                j[None, None, :] < lengths[:, None, None]
            )
            allowed = torch.cat([self.valid[:, None, :].expand(-1, width, -1), see_new], dim=-1)
            dtype = self.lm._hf.dtype
            mask = torch.zeros(allowed.shape, dtype=dtype)
            mask.masked_fill_(~allowed, torch.finfo(dtype).min)
            out = self.lm.body(
                input_ids=ids,
                attention_mask=mask[:, None],
                position_ids=positions,
                use_cache=True,
                **{self._cache_arg: self.kv},
            )
            self._hidden = out[0]
        vectors = []
        for b, (_, steps) in enumerate(drafts):
            for position, *_ in steps:  # the logits before completion[position]
                j = position - 1 - int(self.cached[b])
                vectors.append(self.last[b] if j < 0 else self._hidden[b, j])  # type: ignore[index]
        return self.lm.head(torch.stack(vectors), vocab).float()

    def commit(self, states: list[_State]) -> None:
        """After a step: keep the fed tokens each row's completion still starts with."""
        width = max(map(len, self._fed))
        block = torch.zeros((len(states), width), dtype=torch.bool)
        for b, (s, new) in enumerate(zip(states, self._fed, strict=True)):
            start = int(self.cached[b])
            kept = 0
            while kept < len(new) and start + kept < len(s.completion):
                if s.completion[start + kept] != new[kept]:
                    break
                kept += 1
            block[b, :kept] = True
            if kept:
                self.last[b] = self._hidden[b, kept - 1]  # type: ignore[index]
                self.cached[b] = start + kept
        self.valid = torch.cat([self.valid, block], dim=1)


class Decoder:
    def __init__(
        self,
        lm: EmoLoomLM,
        tokenizer: Any,
        encoders: dict[str, PromptEncoder],
        config: DecodeConfig,
        thresholds: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.lm = lm
        self.tokenizer = tokenizer
        self.encoders = encoders
        self.config = config
        self.pad_id = tokenizer.pad_token_id
        thresholds = thresholds or {}
        if config.labels == "calibrated":
            missing = sorted(set(encoders) - set(thresholds))
            if missing:
                raise EmoloomError(
                    f"decode.labels=calibrated: no thresholds for label set {missing[0]!r} "
                    "(emoloom eval fits them on dev; predict takes --calibration FILE)"
                )
        for name, values in thresholds.items():
            if name in encoders and len(values) != len(encoders[name].label_set.labels):
                raise EmoloomError(
                    f"{name}: {len(values)} thresholds for "
                    f"{len(encoders[name].label_set.labels)} labels"
                )
        use = config.labels == "calibrated"
        self.spaces = {
            name: AnswerSpace(enc, thresholds.get(name) if use else None)
            for name, enc in encoders.items()
        }
        self._wordpiece = type(tokenizer).__name__.startswith("Bert")
        self.lookahead = True
        hf = lm._hf
        params = inspect.signature(hf.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    # ---------------------------------------------------------------------- model calls

    @torch.no_grad()
    def _last_logits(
        self, sequences: Sequence[list[int]], prompt_len: Sequence[int]
    ) -> torch.Tensor:
        """Next-token logits after each sequence (KV-off: the full sequence every time)."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for b, seq in enumerate(sequences):
            ids[b, : len(seq)] = torch.tensor(seq)
            mask[b, : len(seq)] = 1
        last = torch.tensor([len(s) - 1 for s in sequences])
        return self.lm(ids, mask, torch.arange(len(sequences)), last, torch.tensor(prompt_len))

    @torch.no_grad()
    def _speculative_step(
        self, states: list[_State], spaces: list[AnswerSpace], cache: _AnswerCache | None = None
    ) -> None:
        """One model call for every waiting row: each row's pending decision plus the
        decisions its draft guesses (`AnswerSpace.draft`), resolved in order until a guess
        differs from the model's choice; the rest of that draft is dropped. KV-off runs the
        whole sequences; with a `cache` (KV-on) only the answers run, over the cached prompts."""
        drafts = [
            space.draft(s, self.lookahead and cache is None)
            for s, space in zip(states, spaces, strict=True)
        ]
        vocab = _vocab(drafts, spaces)
        if cache is not None:
            logits = cache.logits(drafts, vocab)
        else:
            logits = self._kv_off_logits(states, drafts, vocab)
        k = 0
        for s, space, (_, steps) in zip(states, spaces, drafts, strict=True):
            s.calls += 1
            for j, (position, candidates, g, _) in enumerate(steps):
                if j:  # the previous guess held: s has advanced to exactly this decision
                    assert len(s.completion) == position and s.candidates == candidates
                space.choose(s, logits[k + j], count=False, vad=self.config.vad)
                held = s.completion[-1] == g
                space.advance(s)
                if not held:  # keep the model's choices after the miss as the next guesses
                    for i in range(j + 1, len(steps)):
                        at = steps[i][3]
                        slot = space.slot(at)
                        space.choose(at, logits[k + i], count=False, vad=self.config.vad)
                        s.hints[slot] = at.completion[-1]
                    break
            k += len(steps)
        if cache is not None:
            cache.commit(states)

    def _kv_off_logits(
        self, states: list[_State], drafts: list[_Draft], vocab: torch.Tensor
    ) -> torch.Tensor:
        sequences = [s.prompt + tokens for s, (tokens, _) in zip(states, drafts, strict=True)]
        width = max(len(seq) for seq in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        rows, cols = [], []
        for b, (seq, (_, steps)) in enumerate(zip(sequences, drafts, strict=True)):
            ids[b, : len(seq)] = torch.tensor(seq)
            mask[b, : len(seq)] = 1
            for position, *_ in steps:  # logits before completion[position]
                rows.append(b)
                cols.append(len(states[b].prompt) + position - 1)
        prompt_len = torch.tensor([len(s.prompt) for s in states])
        return self.lm(ids, mask, torch.tensor(rows), torch.tensor(cols), prompt_len, vocab)

    @torch.no_grad()
    def _cached_logits(
        self, new: list[int], cache: dict[str, Any], prompt_len: int
    ) -> torch.Tensor:
        """KV-on: feed only the tokens the cache has not seen (batch of one). The first call
        holds the whole prompt; with a bidirectional prompt it gets the prefix-LM mask, and
        later calls (answer tokens only) are causal over everything cached."""
        kwargs = {self._cache_arg: cache.get("kv"), "use_cache": True}
        ids = torch.tensor([new])
        seen = cache.get("length", 0)
        mask = torch.ones((1, seen + len(new)), dtype=torch.long)
        if not seen:
            mask = self.lm.attention(mask, torch.tensor([prompt_len]))
        out = self.lm._hf(input_ids=ids, attention_mask=mask, **kwargs)
        cache["kv"] = out["cache"] if "cache" in out else out["past_key_values"]
        cache["length"] = seen + len(new)
        return out.logits[0, -1].float()  # the HF forward applies any logit softcapping itself

    # -------------------------------------------------------------------------- decoding

    def decode(
        self,
        rows: Sequence[tuple[Record, str]],
        labels: Sequence[Sequence[str]] | None = None,
    ) -> list[DecodeResult]:
        """Decode each (record, label set name) row; results in input order.

        `labels` (constrained only): one label set per row, written as the answer's labels
        instead of being decoded; VAD and rationale are then decoded as usual, conditioned on
        them (what the model would say given those labels; `bench/vad_ceiling.py`).

        Constrained decoding batches the rows by prompt length (a stable sort of the rows given,
        then batches of `batch_size`): right padding is then a few tokens, not the spread of
        prompt lengths, which cost 17% of KV-off token positions on GoEmotions. Callers that
        want this pass several batches at once (`evaluate` passes `WINDOW_BATCHES` of them);
        the same rows in the same order always form the same batches."""
        self.lm.eval()
        planned = None if labels is None else self._given(rows, labels)
        if self.config.mode == "constrained":
            prompts = [self.encoders[name].encode(record).input_ids for record, name in rows]
            order = sorted(range(len(rows)), key=lambda i: len(prompts[i]))
            out: list[DecodeResult | None] = [None] * len(rows)
            for start in range(0, len(rows), self.config.batch_size):
                batch = order[start : start + self.config.batch_size]
                args = [rows[i] for i in batch], [prompts[i] for i in batch]
                plan = None if planned is None else [planned[i] for i in batch]
                done, states = self._constrained(*args, planned=plan)
                if self.config.vad_hypotheses > 1:
                    done = self._expected_vad(*args, done, states)
                for i, result in zip(batch, done, strict=True):
                    out[i] = result
            return out  # type: ignore[return-value]
        if labels is not None:
            raise EmoloomError("decode(labels=...) needs decode.mode=constrained")
        results: list[DecodeResult] = []
        size = 1 if self.config.use_cache else self.config.batch_size
        for start in range(0, len(rows), size):
            results += self._free(rows[start : start + size])
        return results

    def _given(
        self, rows: Sequence[tuple[Record, str]], labels: Sequence[Sequence[str]]
    ) -> list[tuple[str, ...]]:
        """The given label sets, checked and in canonical order."""
        if len(labels) != len(rows):
            raise EmoloomError(f"decode: {len(labels)} label sets for {len(rows)} rows")
        if self.config.vad_hypotheses > 1:
            raise EmoloomError("decode(labels=...) writes the labels: vad_hypotheses must be 1")
        out = []
        for (record, name), given in zip(rows, labels, strict=True):
            label_set = self.encoders[name].label_set
            unknown = sorted(set(given) - set(label_set.labels))
            if unknown or not given or (len(set(given)) > 1 and not label_set.multi_label):
                raise EmoloomError(
                    f"{record.id}: labels {list(given)} are not a valid {name} answer"
                    + (f" (unknown: {unknown})" if unknown else "")
                )
            out.append(tuple(lab for lab in label_set.labels if lab in set(given)))
        return out

    def _expected_vad(
        self,
        rows: Sequence[tuple[Record, str]],
        prompts: Sequence[list[int]],
        results: list[DecodeResult],
        states: list[_State],
    ) -> list[DecodeResult]:
        """VAD averaged over the K most likely first labels (`DecodeConfig.vad_hypotheses`)."""
        k = self.config.vad_hypotheses
        h_rows, h_prompts, h_plans, weights = [], [], [], []
        for row, prompt, s in zip(rows, prompts, states, strict=True):
            names = self.encoders[row[1]].label_set.labels
            if s.first_probs is None:  # no label decision was asked (a one-label set)
                top = torch.tensor([names.index(s.labels[0])])
                weights.append(torch.ones(1, dtype=torch.float64))
            else:
                p = s.first_probs.double()
                top = torch.argsort(p, descending=True, stable=True)[: min(k, len(names))]
                weights.append(p[top] / p[top].sum())
            for j in top.tolist():
                h_rows.append(row)
                h_prompts.append(prompt)
                h_plans.append((names[j],))
        h_states: list[_State] = []
        size = self.config.batch_size
        for start in range(0, len(h_rows), size):
            end = start + size
            h_states += self._constrained(
                h_rows[start:end], h_prompts[start:end], planned=h_plans[start:end], vad_only=True
            )[1]
        out, at = [], 0
        for (_, name), result, w in zip(rows, results, weights, strict=True):
            mine = h_states[at : at + len(w)]
            at += len(w)
            numbers = torch.tensor([h.numbers for h in mine], dtype=torch.float64)
            vad = (w[:, None] * numbers).sum(0).tolist()
            assert result.prediction is not None
            pred = replace(result.prediction, vad=tuple(round(x, 2) for x in vad))
            space = self.spaces[name]
            line = render(pred, space.label_set, rationale=space.rationale)
            out.append(
                replace(
                    result,
                    prediction=pred,
                    line=line,
                    raw=line,
                    model_calls=result.model_calls + sum(h.calls for h in mine),
                    seconds=result.seconds + sum(h.seconds for h in mine),
                )
            )
        return out

    def _constrained(
        self,
        rows: Sequence[tuple[Record, str]],
        prompts: Sequence[list[int]],
        planned: Sequence[tuple[str, ...]] | None = None,
        vad_only: bool = False,
    ) -> tuple[list[DecodeResult], list[_State]]:
        states = [_State(prompt, vad_only=vad_only) for prompt in prompts]
        for s, plan in zip(states, planned or (), strict=False):
            s.planned = plan
        spaces = [self.spaces[name] for _, name in rows]
        for s, space in zip(states, spaces, strict=True):
            space.advance(s)
        cache = _AnswerCache(self.lm, states, self.pad_id) if self.config.use_cache else None
        while True:
            waiting = [i for i, s in enumerate(states) if not s.done]
            if not waiting:
                break
            if cache is not None:
                cache.keep(waiting)
            try:
                self._speculative_step(
                    [states[i] for i in waiting], [spaces[i] for i in waiting], cache
                )
            except _Resplit:
                for space in {id(space): space for space in spaces}.values():
                    space.whole_lines()
                return self._constrained(rows, prompts, planned, vad_only)
            for i in waiting:
                if states[i].done and not states[i].seconds:
                    states[i].seconds = time.perf_counter() - states[i].started
        if vad_only:
            return [], states
        out = []
        for s, space in zip(states, spaces, strict=True):
            pred = Prediction(
                tuple(s.labels), (s.numbers[0], s.numbers[1], s.numbers[2]), s.rationale
            )
            line = render(pred, space.label_set, rationale=space.rationale)
            out.append(
                DecodeResult(
                    pred, line, line, True, None, s.calls, len(s.completion), s.forced, s.seconds
                )
            )
        return out, states

    def _text(self, ids: Sequence[int]) -> str:
        """Generated tokens as text. WordPiece decoding puts spaces around punctuation, which
        no JSON parser accepts; join pieces without spaces except between two word pieces."""
        if not self._wordpiece:
            return self.tokenizer.decode(list(ids), skip_special_tokens=True)
        pieces = [
            t
            for t in self.tokenizer.convert_ids_to_tokens(list(ids))
            if t not in self.tokenizer.all_special_tokens
        ]
        text = ""
        for piece in pieces:
            if piece.startswith("##"):
                text += piece[2:]
            elif text and re.match(r"\w", piece) and re.search(r"[A-Za-z]$", text):
                text += " " + piece
            else:
                text += piece
        return text

    def _free(self, rows: Sequence[tuple[Record, str]]) -> list[DecodeResult]:
        eos = {enc.eos_id for enc in self.encoders.values()}
        prompts = [self.encoders[name].encode(record).input_ids for record, name in rows]
        generated: list[list[int]] = [[] for _ in rows]
        finished = [False] * len(rows)
        calls = [0] * len(rows)
        started = time.perf_counter()
        seconds = [0.0] * len(rows)
        caches: list[dict[str, Any]] = [{} for _ in rows]
        for _ in range(self.config.max_new_tokens):
            active = [i for i in range(len(rows)) if not finished[i]]
            if not active:
                break
            if self.config.use_cache:
                (i,) = active
                seq = prompts[i] + generated[i]
                new = seq[caches[i].get("length", 0) :]
                logits = self._cached_logits(new, caches[i], len(prompts[i]))[None]
            else:
                sequences = [prompts[i] + generated[i] for i in active]
                logits = self._last_logits(sequences, [len(prompts[i]) for i in active])
            for row, i in enumerate(active):
                token = int(torch.argmax(logits[row]))
                calls[i] += 1
                if token in eos:
                    finished[i] = True
                else:
                    generated[i].append(token)
                    text = self._text(generated[i])
                    if text.count("{") and text.count("{") == text.count("}"):
                        finished[i] = True  # the JSON object closed: the answer is complete
                if finished[i]:
                    seconds[i] = time.perf_counter() - started
        out = []
        for i, (_, name) in enumerate(rows):
            raw = self._text(generated[i])
            seconds[i] = seconds[i] or time.perf_counter() - started
            result = parse(raw, self.encoders[name].label_set)
            if isinstance(result, ParseFailure):
                out.append(
                    DecodeResult(
                        None,
                        None,
                        raw,
                        False,
                        result.reason.value,
                        calls[i],
                        len(generated[i]),
                        0,
                        seconds[i],
                    )
                )
            else:
                line = render(
                    result, self.encoders[name].label_set, rationale=self.encoders[name].rationale
                )
                out.append(
                    DecodeResult(
                        result, line, raw, True, None, calls[i], len(generated[i]), 0, seconds[i]
                    )
                )
        return out
