"""The architecture of the largest built-in labeler, for random-weight stand-ins of real size.

Weights cannot travel everywhere (a GPU machine without the model cache, a benchmark of throughput
alone): ``qwen2_1_5b_config()`` gives Qwen2.5-Coder-1.5B-Instruct's configuration (as its
de-quantized GGUF has it), so a model of the same shapes can be built with random weights.
"""

from __future__ import annotations

from typing import Any


def qwen2_1_5b_config(vocab_size: int = 151_936) -> dict[str, Any]:
    """Keyword arguments for ``transformers.AutoConfig.for_model``: 28 layers, hidden size 1536,
    12 query / 2 key-value heads, MLP 8960, untied output layer, 152k vocabulary."""
    return {
        "model_type": "qwen2",
        "vocab_size": vocab_size,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1_000_000.0,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    }
