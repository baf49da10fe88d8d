"""AnswerSpace: VAD numbers nearest the expected value ("mean") or greedy, batched answer
tokenisation, and the rationale guess of speculative decoding."""

from __future__ import annotations

import pytest
import torch

from emoloom.appraisal import atom_targets, rationale_from_atoms
from emoloom.config import ModelConfig
from emoloom.contract import Prediction
from emoloom.decoding import AnswerSpace, DecodeConfig, _State
from emoloom.errors import EmoloomError
from emoloom.labels import GOEMOTIONS
from emoloom.modeling import load_backbone
from emoloom.prompting import PromptEncoder


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", params=["minilm", "tiny-qwen2", "tiny-llama"])
def tokenizer(request):
    return load_backbone(ModelConfig(name=request.param), seed=0).tokenizer


def _decode_numbers(tokenizer, vad: str, split: tuple[str, str]) -> list[float]:
    """Drive one answer through AnswerSpace with hand-made logits: labels and rationale take
    the first candidate; every number puts equal mass on two ways to write it (0.2x and 0.8x)
    and prefers "0" at any other digit."""
    space = AnswerSpace(PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=False))
    s = _State(prompt=[1, 2, 3])
    space.advance(s)
    vocab = len(tokenizer)
    fractions_seen: set[int] = set()
    while not s.done:
        logits = torch.full((vocab,), -30.0)
        names = tokenizer.convert_ids_to_tokens(s.candidates)
        if not s.closed:
            logits[s.candidates[0]] = 0.0
        else:
            first_fraction = len(s.candidates) > 2 and len(s.numbers) not in fractions_seen
            if len(s.candidates) > 2:
                fractions_seen.add(len(s.numbers))
            for token_id, name in zip(s.candidates, names, strict=True):
                name = name.lstrip("#Ġ▁")
                if first_fraction and name in split:  # the two halves of the bimodal number
                    logits[token_id] = 5.0
                elif name in ("0", "00", "000"):
                    logits[token_id] = 3.0 if first_fraction else 10.0
        space.choose(s, logits, vad=vad)
        space.advance(s)
    return s.numbers


def test_mean_takes_the_middle_of_a_bimodal_number_where_greedy_takes_a_mode(tokenizer):
    # MiniLM writes the fraction as one token ("20"), Qwen one digit at a time, Llama in
    # groups of up to three: the two modes are "20"/"80" or "2"/"8" whichever exists.
    vocab = tokenizer.get_vocab()
    split = ("20", "80") if "20" in vocab or "##20" in vocab else ("2", "8")
    greedy = _decode_numbers(tokenizer, "greedy", split)
    mean = _decode_numbers(tokenizer, "mean", split)
    assert all(x in (0.2, 0.8) for x in greedy), greedy
    assert all(0.45 <= x <= 0.55 for x in mean), mean


def test_an_unknown_vad_rule_is_refused():
    with pytest.raises(EmoloomError, match="decode.vad='median'"):
        DecodeConfig(vad="median")


def test_batched_answer_tokenisation_matches_one_line_at_a_time(tokenizer):
    encoder = PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=True)
    space = AnswerSpace(encoder)
    answers = [
        (["joy"], [0.0, 0.5, 1.0], "no clear appraisal"),
        (["admiration", "gratitude"], [0.73, 0.09, 0.61], "goal attained fair treatment"),
        (["nervousness"], [1.0, 1.0, 0.0], "outcome uncertain little control"),
        (["joy"], [0.0, 0.5, 1.0], "no clear appraisal"),  # a repeat comes from the cache
    ]
    batched = space.many(answers)
    space.MAX_LINES = 3  # a full cache is emptied, and every line asked for still comes back
    assert space.many(answers[1:3]) == batched[1:3] and len(space._cache) == 3
    assert space.many(answers[:1] + [(["joy"], [0.1, 0.2, 0.3], None)])[0] == batched[0]
    assert len(space._cache) == 2
    for (labels, numbers, rationale), ids in zip(answers, batched, strict=True):
        pred = Prediction(tuple(labels), tuple(numbers), rationale)
        assert list(ids) == encoder.completion(pred)[0]
    assert batched[0] == batched[3] and batched[0] != batched[1]


def test_the_rationale_guess_is_the_chosen_labels_profile_rationale(tokenizer):
    space = AnswerSpace(PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=True))
    s = _State(prompt=[1], labels=["gratitude"], closed=True, numbers=[0.8, 0.4, 0.6])
    space.advance(s)
    assert s.candidates is not None  # the rationale decision is pending
    typical = rationale_from_atoms(atom_targets(["gratitude"]))
    assert typical != "no clear appraisal"
    drafted, steps = space.draft(s)
    # the draft runs through every rationale decision, guessing the profile's phrase each time
    line = space.tokens(s.labels, s.numbers, typical)
    assert tuple(drafted) == line[: steps[-1][0]]  # up to the last decision: the rest is forced
    assert all(g is not None for _, _, g, _ in steps)


def _whole(space: AnswerSpace, s: _State):
    """The options of `s`'s pending decision tokenised as whole lines (the reference)."""
    reference = AnswerSpace(space.encoder)
    reference.whole_lines()
    return reference.options(s)[0]


@pytest.mark.parametrize(
    "labels, numbers",
    [(["joy"], []), (["admiration", "gratitude"], [0.73]), (["grief"], [1.0, 0.05]),
     (["nervousness"], [0.2, 0.4, 0.99])],
)  # fmt: skip
def test_options_tokenised_as_head_and_tail_equal_whole_lines(tokenizer, labels, numbers):
    encoder = PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=True)
    space = AnswerSpace(encoder)
    s = _State(prompt=[1], labels=labels, closed=True, numbers=numbers)
    options, shared = space.options(s)
    slot = len(numbers)
    assert space._splits[slot] is True  # these tokenizers split between ':' and a digit
    assert options == _whole(space, s)
    # every option starts with the decided part's tokens, which is what `shared` promises
    line = space.tokens(labels, [*numbers, 0.5, 0.5, 0.5][:3], "no clear appraisal")
    assert shared > 0 and all(rep[:shared] == line[:shared] for _, reps in options for rep in reps)
    # a second prefix for the same slot reuses the tails and still equals whole lines
    other = _State(prompt=[1], labels=["anger"], closed=True, numbers=[0.5] * slot)
    assert space.options(other)[0] == _whole(space, other)


def test_a_tokenizer_that_joins_across_the_cut_keeps_whole_lines():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # splits on whitespace only: a whole line (no spaces) is one unknown word, a head and a
    # tail are two
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "[EOS]": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", eos_token="[EOS]", pad_token="[EOS]"
    )
    space = AnswerSpace(PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=True))
    s = _State(prompt=[1], labels=["joy"], closed=True)
    options, shared = space.options(s)
    assert space._splits == {0: False} and shared == 0
    assert options == _whole(space, s)
    # one [UNK] per space-separated word of the whole line, then eos
    line = space._render(["joy"], [0.0, 0.0, 0.0], space.rationales[0])
    assert options[0][1][0] == (0,) * len(line.split()) + (1,)


def test_the_rationale_guess_after_the_typical_phrase_is_out_is_the_best_agreeing_live_one(
    tokenizer,
):
    from emoloom.appraisal import rationale_agreement, rationale_vocabulary

    space = AnswerSpace(PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=True))
    atoms = atom_targets(["gratitude"])
    typical = rationale_from_atoms(atoms)
    # the agreement ranks the typical phrase first among all phrases
    assert max(rationale_vocabulary(), key=lambda p: rationale_agreement(p, atoms)) == typical
    s = _State(prompt=[1], labels=["gratitude"], closed=True, numbers=[0.8, 0.4, 0.6])
    space.advance(s)
    s.live = [(opt, reps) for opt, reps in space._live(s) if opt != typical]  # ruled out
    best = max((opt for opt, _ in s.live), key=lambda opt: rationale_agreement(opt, atoms))
    assert best != typical and rationale_agreement(best, atoms) > 0
    n = len(s.completion)
    tokens = {reps[0][n] for opt, reps in s.live if opt == best}
    assert space.guess(s) in tokens
