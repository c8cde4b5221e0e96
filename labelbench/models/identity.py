"""What a model is: the identity string the label cache keys on (it changes whenever anything that
shapes the model's outputs does), and the description ``labelbench models info`` shows."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from labelbench.models.device import (
    default_precision,
    precision_record,
)
from labelbench.models.directory import check_directory, describe_directory
from labelbench.models.hashing import sha256_file, weights_sha256
from labelbench.models.manifests import (
    BUILTIN,
    MANIFEST_NAME,
    read_manifest,
)
from labelbench.models.specs import ResolvedModel, resolve


def model_identity(spec: str | Path) -> str:
    """A short string that changes whenever anything that shapes the model's outputs does:
    ``name@sha256:<16 hex>+files:<12 hex>`` for built-ins (the weights' hash from the manifest)
    and ``dirname@sha256:<16 hex>+files:<12 hex>`` for local directories, where ``files`` hashes
    the config, tokenizer files and chat template (``OUTPUT_FILES``); ``id@commit`` for hub ids
    (the commit covers every file), ``file.gguf@sha256:<16 hex of the GGUF file>`` for GGUF files
    (the file holds config and tokenizer too). Cached per file state, so calling it repeatedly
    is cheap."""
    return identity_of(resolve(spec))


OUTPUT_FILES = ("*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken")
"""Files of a model directory besides its weights that change its outputs: ``config.json``
(e.g. ``rope_theta``), ``generation_config.json``, the tokenizer's files (``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``, ``*.model``, ``vocab``/``merges``) and
the chat template (``chat_template.jinja`` or in ``tokenizer_config.json``). The weights' index
and labelbench's manifest are left out."""


def _output_files(directory: Path) -> list[Path]:
    skip = {MANIFEST_NAME}
    return sorted(
        {
            path
            for pattern in OUTPUT_FILES
            for path in directory.glob(pattern)
            if path.is_file() and path.name not in skip and not path.name.endswith(".index.json")
        }
    )


def _state(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


def identity_of(resolved: ResolvedModel) -> str:
    if resolved.source == "hub":
        return f"{resolved.spec}@{resolved.revision}"
    if resolved.source == "gguf" and resolved.gguf is not None and resolved.revision is not None:
        return f"{resolved.gguf.name}@sha256:{resolved.revision[:16]}"
    if resolved.source == "builtin":
        weights = read_manifest(resolved.spec)["weights_sha256"]
        name = resolved.spec
    else:
        check_directory(resolved.path)
        state = _state(sorted(resolved.path.glob("*.safetensors")))
        weights = _cached_weights_sha256(resolved.path, state)
        name = resolved.path.name
    others = _output_files(resolved.path)
    files = _cached_files_sha256(resolved.path, _state(others))
    return f"{name}@sha256:{weights[:16]}+files:{files[:12]}"


@lru_cache(maxsize=64)
def _cached_weights_sha256(path: Path, state: tuple[tuple[str, int, int], ...]) -> str:
    return weights_sha256(path)


@lru_cache(maxsize=64)
def _cached_files_sha256(path: Path, state: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in state:
        digest.update(f"{name}\0{sha256_file(path / name)}\n".encode())
    return digest.hexdigest()


def describe(spec: str | Path) -> dict[str, Any]:
    """What ``labelbench models info`` shows: directory facts, plus the manifest for built-ins."""
    resolved = resolve(spec)
    check_directory(resolved.path)
    facts: dict[str, Any] = {"path": str(resolved.path), "identity": identity_of(resolved)}
    facts["precision"] = _precision_facts(resolved.spec)
    if resolved.source == "builtin":
        entry = BUILTIN[resolved.spec]
        facts |= read_manifest(resolved.spec)
        facts["upstream"] = entry.upstream or entry.description
        facts["memory"] = {
            "pull (de-quantizing the GGUF), peak GB": entry.load_gb,
            "float32 weights, GB": round(entry.parameters * 4 / 1e9, 1),
            "bfloat16 weights, GB": round(entry.parameters * 2 / 1e9, 1),
        }
    elif resolved.source == "gguf":
        facts |= json.loads((resolved.path / MANIFEST_NAME).read_text())
    return describe_directory(resolved.path) | facts


def _precision_facts(spec: str) -> dict[str, Any]:
    """The default precision and, for built-ins, the agreement measured with float32."""
    facts: dict[str, Any] = {"default": default_precision(spec)}
    measured = precision_record().get(spec)
    if measured is None:
        facts["measured"] = "not measured; float32 unless a labeler sets dtype"
        return facts
    for figures in measured["figures"]:
        if figures["precision"] == "float32":
            continue
        facts[figures["precision"]] = (
            f"max |dP(A)| {figures['max_abs_delta_p']:.4f}, "
            f"mean {figures['mean_abs_delta_p']:.4f}, "
            f"flips {figures['flips']}/{figures['orders']}, "
            f"{figures['speedup_vs_float32']:.2f}x float32's speed on the recording machine "
            f"({figures['pairs']} TL;DR pairs)"
        )
    facts["command"] = measured["command"]
    if measured["default"] != facts["default"]:
        facts["default"] += (
            f" (recorded default {measured['default']}; this device does not multiply "
            f"{measured['default']} natively, where it is slower than float32)"
        )
    return facts


def declared_context_length(spec: str | Path) -> int | None:
    """The context length, in tokens, the model's ``config.json`` declares
    (``max_position_embeddings``, ``n_positions``, ``max_seq_len`` or ``seq_length``, as
    ``labeling.output_head.model_context_length`` reads them), without loading the weights;
    None when it states none. Raises ModelError when the model cannot be resolved."""
    path = resolve(spec).path / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text_config = config.get("text_config") or config
    for name in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = text_config.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None
