"""Loading a model spec: the causal LM (safetensors only) on a device in a dtype, its tokenizer and
its identity; errors say what is wrong with the folder and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labelbench.errors import ModelError
from labelbench.models.device import (
    resolve_device,
    resolve_precision,
)
from labelbench.models.directory import check_directory
from labelbench.models.identity import identity_of
from labelbench.models.specs import ResolvedModel, resolve

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: str
    path: Path


def _load_error(resolved: ResolvedModel, what: str, error: Exception) -> ModelError:
    detail = (str(error).strip().splitlines() or [""])[0]
    if "trust_remote_code" in str(error):
        fix = "it needs custom code; pass trust_remote_code=True only if you trust its source"
    elif resolved.source == "builtin":
        fix = f"run `labelbench models pull {resolved.spec} --force`"
    elif resolved.source == "gguf":
        fix = f"delete that folder to de-quantize {resolved.gguf} again"
    else:
        fix = "re-save the model there with save_pretrained"
    return ModelError(
        f"{resolved.path}: could not load the {what} ({type(error).__name__}: {detail}); {fix}"
    )


def load_tokenizer(spec: str | Path, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    resolved = resolve(spec)
    check_directory(resolved.path)
    return _load_tokenizer(resolved, trust_remote_code)


def _load_tokenizer(resolved: ResolvedModel, trust_remote_code: bool) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=trust_remote_code)
    except Exception as error:
        raise _load_error(resolved, "tokenizer", error) from error


def load_model(
    spec: str | Path,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | None = "cpu",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """The causal LM (in eval mode, on ``device``), its tokenizer and identity.

    ``dtype`` is a torch dtype or a precision name (``PRECISIONS``); None: float32. The cache
    holds one float32 copy per model, cast while loading. Raises ModelError, also when the
    weights lack part of the model (e.g. a reward model's folder: no language-model head)."""
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(dtype, str):
        dtype = getattr(torch, resolve_precision(spec, dtype))
    resolved = resolve(spec)
    check_directory(resolved.path)
    identity = identity_of(resolved)
    tokenizer = _load_tokenizer(resolved, trust_remote_code)
    try:
        model, loading = AutoModelForCausalLM.from_pretrained(
            resolved.path,
            dtype=dtype or torch.float32,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
        )
    except Exception as error:
        raise _load_error(resolved, "model", error) from error
    missing = sorted(loading.get("missing_keys") or ())
    if missing:  # transformers would draw them at random and only log it
        raise ModelError(
            f"{resolved.path}: not a causal language model: its weights lack "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} (a reward model or "
            "another head? a labeler or policy needs the model's language-model head)"
        )
    if device is not None and device != "cpu":
        model = model.to(resolve_device(device))
    return LoadedModel(model.eval(), tokenizer, identity, resolved.path)
