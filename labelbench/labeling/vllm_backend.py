"""vLLM in process: the path for GPU machines and clusters (``pip install labelbench[vllm]``).

vLLM's automatic prefix caching reuses the shared prefix (preamble, exemplars, context) across
orders and items, and continuous batching replaces the length grouping of the transformers backend.
Prompts are passed as token ids (``labelbench.prompting.prompt_token_ids``), so the scored position
is the prompt's last token whatever special tokens the tokenizer would add.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labelbench.errors import ModelError
from labelbench.labeling.backend import Sample, Scored
from labelbench.requests import RationaleRequest, ScoreRequest


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise ModelError(
            "the vllm backend needs vLLM (a GPU machine): pip install 'labelbench[vllm]'"
        ) from error
    return vllm


class VLLMBackend:
    """Scores and generates with ``vllm.LLM``; ``model`` is a local directory or hub id."""

    def __init__(self, model: str, *, identity: str | None = None, **llm_kwargs: Any) -> None:
        vllm = _import_vllm()
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, enable_prefix_caching=True, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._identity = identity or f"vllm:{model}"
        self._answer_ids: dict[tuple[tuple[str, ...], str], list[int]] = {}
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        self.dtype = str(getattr(config, "dtype", "auto")).removeprefix("torch.")
        length = getattr(config, "max_model_len", None)
        self.context_length = length if isinstance(length, int) else None

    @property
    def identity(self) -> str:
        return self._identity

    def set_identity(self, identity: str) -> None:
        """Set once the chat mode is resolved from the loaded tokenizer (``open_labeler``)."""
        self._identity = identity

    def _ids(self, answers: tuple[str, ...], text: str) -> list[int]:
        from labelbench.prompting import answer_token_ids

        key = (answers, text[-64:])
        if key not in self._answer_ids:
            self._answer_ids[key] = answer_token_ids(answers, self.tokenizer, after=key[1])
        return self._answer_ids[key]

    def _prompts(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        from labelbench.prompting import prompt_token_ids

        return [{"prompt_token_ids": prompt_token_ids(self.tokenizer, text)} for text in texts]

    def _score_texts(
        self, texts: Sequence[str], answers: Sequence[tuple[str, ...]]
    ) -> list[Scored]:
        # Full-vocabulary log-probabilities of the first generated position are not returned;
        # the answers' ranks are, for the top ``logprobs`` tokens, so ask for enough of them.
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=20)
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=False)
        scored = []
        for text, answer, output in zip(texts, answers, outputs, strict=True):
            top = output.outputs[0].logprobs[0]
            ids = self._ids(answer, text)
            values = tuple(top[i].logprob for i in ids) if all(i in top for i in ids) else None
            scored.append(Scored(values, len(output.prompt_token_ids)))
        return scored

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        return self._score_texts([r.text for r in requests], [r.answers for r in requests])

    def rationales(
        self, requests: Sequence[RationaleRequest], seeds: Sequence[int]
    ) -> list[list[Sample]]:
        params = [
            self._vllm.SamplingParams(
                n=r.n,
                temperature=r.temperature,
                top_k=r.top_k or -1,
                max_tokens=r.max_new_tokens,
                seed=seed % 2**31,
            )
            for r, seed in zip(requests, seeds, strict=True)
        ]
        outputs = self.llm.generate(
            self._prompts([r.text for r in requests]), params, use_tqdm=False
        )
        texts, answers, owners = [], [], []
        for index, (request, output) in enumerate(zip(requests, outputs, strict=True)):
            for sample in output.outputs:
                texts.append(request.text + sample.text + request.score_suffix)
                answers.append(request.answers)
                owners.append((index, sample))
        scored = self._score_texts(texts, answers)
        results: list[list[Sample]] = [[] for _ in requests]
        for (index, sample), score in zip(owners, scored, strict=True):
            results[index].append(
                Sample(sample.text, score.logprobs, score.prompt_tokens, len(sample.token_ids))
            )
        return results
