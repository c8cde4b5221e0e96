"""Choosing a labeling backend by name."""

from __future__ import annotations

from typing import Any

from labelbench.errors import InputError

BACKENDS = ("transformers", "http", "vllm")


def make_backend(
    kind: str,
    model: str,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    identity: str | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_rows: int = 32,
    dtype: str | None = None,
    device: str | None = None,
) -> Any:
    """A backend by name: ``transformers`` (in process), ``http`` (OpenAI-compatible), ``vllm``.

    ``dtype`` (``float32`` | ``bfloat16``; None: the model's default precision) and ``device``
    (None: CUDA when available, else the CPU) apply to the in-process backends; the precision
    is part of the backend's identity, so the label cache never mixes two precisions."""
    if kind == "transformers":
        from labelbench.labeling.transformers_backend import TransformersBackend
        from labelbench.models.registry import load_model, resolve_device, resolve_precision

        precision = resolve_precision(model, dtype)
        loaded = load_model(model, dtype=precision, device=resolve_device(device))
        return TransformersBackend(
            loaded.model,
            loaded.tokenizer,
            identity or f"{loaded.identity}:{precision}",
            max_rows=max_rows,
        )
    if kind == "http":
        from labelbench.labeling.http_backend import HTTPBackend

        if not base_url:
            raise InputError("--base-url", "the http backend needs the server's base URL")
        return HTTPBackend(
            base_url,
            model,
            identity=identity,
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout=timeout,
        )
    if kind == "vllm":
        from labelbench.labeling.vllm_backend import VLLMBackend

        return VLLMBackend(model, identity=identity)
    raise InputError("--backend", f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
