"""Which tokens a labeler scores: answers chosen in context, and the prompt's own last token."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_model, build_tiny_tokenizer

from labelbench.data import Comparison
from labelbench.errors import InputError
from labelbench.labeling.transformers_backend import TransformersBackend
from labelbench.prompting import answer_token_ids, plan, prompt_token_ids
from labelbench.requests import RationaleRequest, ScoreRequest

ENDING = "Preferred Summary="  # the summarization family's ending template


def sentencepiece_style_tokenizer(corpus: list[str]):
    """A Metaspace BPE (as SentencePiece): a word-start piece ``▁1`` and a bare ``1``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<pad>", "<s>", "</s>"])
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )


WORD_START_CORPUS = [
    "Preferred Summary= Preferred Summary=",
    "rated 1 and 2 and 1 2 1 2",
    "Summary 1: a short one. Summary 2: b",
    "0 1 2 3 4 5 6 7 8 9 12 21 Post: the user wants advice",
] * 5


def test_answer_tokens_are_the_ones_that_follow_the_ending():
    tokenizer = sentencepiece_style_tokenizer(WORD_START_CORPUS)
    vocab = tokenizer.get_vocab()
    assert {"▁1", "1", "▁2", "2"} <= set(vocab)
    in_context = tokenizer(ENDING + "1", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(in_context)[-1] == "1"  # not "▁1"

    ids = answer_token_ids(["1", "2"], tokenizer, after=ENDING)
    assert tokenizer.convert_ids_to_tokens(ids) == ["1", "2"]

    # the engine scores the same tokens: its log-probabilities are those of "1" and "2"
    model = build_tiny_model(tokenizer)
    backend = TransformersBackend(model, tokenizer, "sp@test")
    request = ScoreRequest("Which summary is better?\n", "Post: advice\n", ENDING)
    (scored,) = backend.score([request])
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt_token_ids(tokenizer, request.text)])).logits
    logprobs = torch.log_softmax(logits[0, -1].float(), dim=-1)
    expected = [float(logprobs[vocab[token]]) for token in ("1", "2")]
    assert scored.logprobs == pytest.approx(expected, abs=1e-5)


def test_answers_that_merge_with_the_ending_fail_when_the_variant_is_planned():
    # "Summary=1" is one piece in this vocabulary: no single answer token follows the ending
    tokenizer = sentencepiece_style_tokenizer(
        ["Preferred Summary=1", "Preferred Summary=2", "rated 1 and 2", "Post: a"] * 5
    )
    assert tokenizer.convert_ids_to_tokens(
        tokenizer(ENDING + "1", add_special_tokens=False)["input_ids"]
    )[-1].endswith("=1")
    pair = Comparison(
        id="p", group_id="p", task="summarization", context="a", response_a="1", response_b="2"
    )
    with pytest.raises(InputError) as caught:
        plan([pair], "summarization/base-0shot", tokenizer=tokenizer)
    assert caught.value.field == "answers"
    assert "ending" in caught.value.message and "summarization/base-0shot" in caught.value.message
    assert "_family.yaml" in str(caught.value.source)


@pytest.fixture()
def eos_appending():
    """The tiny tokenizer with a post-processor that appends EOS (as ``add_eos_token=True``)."""
    from tokenizers.processors import TemplateProcessing

    tokenizer = build_tiny_tokenizer()
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        special_tokens=[("<s>", tokenizer.bos_token_id), ("</s>", tokenizer.eos_token_id)],
    )
    return build_tiny_model(tokenizer), tokenizer


def test_prompt_ids_end_with_the_prompt_and_hold_one_bos(eos_appending):
    _, tokenizer = eos_appending
    text = "Which summary is better? Preferred Summary="
    bare = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer(text)["input_ids"][-1] == tokenizer.eos_token_id  # what the bug scored after
    assert prompt_token_ids(tokenizer, text) == [tokenizer.bos_token_id, *bare]
    with_bos = prompt_token_ids(tokenizer, "<s>" + text)  # a chat template that writes its BOS
    assert with_bos == [tokenizer.bos_token_id, *bare]


def test_scores_and_rationales_start_right_after_the_prompt(eos_appending):
    model, tokenizer = eos_appending
    backend = TransformersBackend(model, tokenizer, "eos@test")
    request = ScoreRequest("Which summary is better?\n", "Post: a job\n", ENDING)
    ids = [tokenizer.bos_token_id, *tokenizer(request.text, add_special_tokens=False)["input_ids"]]
    answers = answer_token_ids(request.answers, tokenizer, after=ENDING)
    with torch.inference_mode():
        right = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
        after_eos = torch.log_softmax(
            model(input_ids=torch.tensor([[*ids, tokenizer.eos_token_id]])).logits[0, -1], -1
        )
    expected = [float(right[a]) for a in answers]
    assert expected != pytest.approx([float(after_eos[a]) for a in answers], abs=1e-4)
    (scored,) = backend.score([request])
    assert scored.logprobs == pytest.approx(expected, abs=1e-5)
    assert scored.prompt_tokens == len(ids)

    chain = RationaleRequest(
        request.shared, request.context, "Rationale:", "\n" + ENDING, max_new_tokens=5
    )
    prompt = [tokenizer.bos_token_id, *tokenizer(chain.text, add_special_tokens=False)["input_ids"]]
    with torch.inference_mode():
        greedy = model.generate(
            torch.tensor([prompt]), max_new_tokens=5, do_sample=False, eos_token_id=None
        )[0, len(prompt) :].tolist()
    ((sample,),) = backend.rationales([chain], [0])
    assert sample.rationale == tokenizer.decode(greedy, skip_special_tokens=True)


def test_http_prompts_go_as_token_ids_ending_with_the_prompt(eos_appending, tmp_path):
    """Given the served model's tokenizer, the HTTP backend sends token ids: BOS once, no EOS,
    for scores and rationales; the chat template comes from that tokenizer."""
    from test_labeler_handoff import fake_server
    from test_prompt_golden import CHAT_TEMPLATE

    from labelbench.config import LabelerSpec
    from labelbench.labeling.labeler import open_labeler

    model, tokenizer = eos_appending
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(tmp_path / "tok")
    model.save_pretrained(tmp_path / "tok")  # a model folder, as the served model's
    pair = Comparison(
        id="p", group_id="p", task="summarization", context="a job", response_a="x", response_b="y"
    )
    with fake_server() as (url, server):
        spec = LabelerSpec(name="m", backend="http", url=url, tokenizer=str(tmp_path / "tok"))
        labeler = open_labeler(spec)
        planned = labeler.plan([pair], "summarization/base-0shot-cot").requests
        labeler.label([pair], "summarization/base-0shot-cot", cache=None)
    assert labeler.spec.chat is True and "|token-ids|chat=on" in labeler.identity
    texts = [p.request.text for p in planned]
    sent = server.prompts  # each rationale request and its scoring, from concurrent threads
    assert all(prompt_token_ids(tokenizer, text) in sent for text in texts)
    assert all(
        ids[0] == tokenizer.bos_token_id and ids[-1] != tokenizer.eos_token_id for ids in sent
    )
    assert all(isinstance(prompt, list) for prompt in server.prompts)
