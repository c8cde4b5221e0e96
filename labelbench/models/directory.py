"""A model directory as labelbench loads it: checked before loading (config, safetensors weights
only, a tokenizer) and described from its files (parameters from the safetensors headers)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from labelbench.errors import ModelError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


def check_directory(path: Path) -> None:
    """Refuse a model directory that cannot be loaded safely; say what is wrong and how to fix."""
    config = path / "config.json"
    if not config.is_file():
        raise ModelError(
            f"{path}: no config.json; not a model directory (save one with save_pretrained)"
        )
    try:
        json.loads(config.read_text())
    except ValueError as error:
        raise ModelError(
            f"{config}: not valid JSON ({error}); restore the file or re-save the model"
        ) from error
    if not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelError(
                f"{path}: only pickle weights ({', '.join(pickles)}); labelbench loads safetensors "
                f"only, since unpickling can run code. Convert them where you trust the source: "
                f"from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
            )
        raise ModelError(f"{path}: no weights (*.safetensors); save the model with save_pretrained")
    for weights in path.glob("*.safetensors"):
        _shapes(weights)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(
            f"{path}: no tokenizer ({' or '.join(TOKENIZER_FILES)}); "
            f"save one there with tokenizer.save_pretrained"
        )


def _shapes(weights: Path) -> list[list[int]]:
    """The tensor shapes in a safetensors file's header; a damaged file is a ModelError."""
    from safetensors import safe_open

    try:
        with safe_open(weights, framework="pt") as tensors:
            return [tensors.get_slice(key).get_shape() for key in tensors.keys()]  # noqa: SIM118
    except Exception as error:  # safetensors raises its own error type for a bad header
        raise ModelError(
            f"{weights}: unreadable safetensors file ({error}); re-save or re-pull the model"
        ) from error


def describe_directory(path: Path) -> dict[str, Any]:
    """Parameters (from the safetensors headers), vocabulary size, context length, chat template."""
    config = json.loads((path / "config.json").read_text())
    text_config = config.get("text_config", config)
    parameters = sum(
        math.prod(shape) for weights in path.glob("*.safetensors") for shape in _shapes(weights)
    )
    tokenizer_config = path / "tokenizer_config.json"
    chat_template = (path / "chat_template.jinja").is_file() or (
        tokenizer_config.is_file()
        and bool(json.loads(tokenizer_config.read_text()).get("chat_template"))
    )
    return {
        "architecture": (config.get("architectures") or [config.get("model_type")])[0],
        "parameters": parameters,
        "vocab_size": text_config.get("vocab_size"),
        "context_length": text_config.get("max_position_embeddings"),
        "chat_template": chat_template,
    }
