"""Where a model spec points: a built-in name, a local model directory, a local GGUF file (its
de-quantized copy in the cache) or a hub id (its snapshot in the hub cache)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from labelbench.errors import ModelError
from labelbench.models.dequantize import (
    GGUF_MAGIC,
    GGUF_PREFIX,
    convert_gguf,
    gguf_in,
)
from labelbench.models.hashing import gguf_sha256
from labelbench.models.manifests import (
    BUILTIN,
    MANIFEST_NAME,
    cache_dir,
    is_pulled,
    model_dir,
    not_pulled,
)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model spec points: always a local directory, plus how it was named."""

    spec: str
    path: Path
    source: Literal["builtin", "local", "hub", "gguf"]
    revision: str | None = None
    """The hub commit for hub ids; the GGUF file's SHA-256 for GGUF specs."""
    gguf: Path | None = None
    """For GGUF specs, the user's GGUF file (``path`` is its de-quantized copy in the cache)."""


def resolve(spec: str | Path) -> ResolvedModel:
    """A built-in name (must be pulled), a local model directory, a local ``.gguf`` file (or a
    directory without config.json holding exactly one), or a hub id.

    A GGUF is de-quantized to float32 once, into ``cache_dir()/models/gguf-<16 hex of its
    SHA-256>``, and read from there afterwards. Raises ModelError."""
    text = str(spec)
    if text in BUILTIN:
        if not is_pulled(text):
            raise not_pulled(text)
        return ResolvedModel(text, model_dir(text), "builtin")
    path = Path(text).expanduser()
    gguf = gguf_in(path)
    if gguf is not None:
        return _resolve_gguf(text, gguf)
    if path.is_dir():
        return ResolvedModel(text, path.resolve(), "local")
    if path.exists():
        raise ModelError(
            f"{path}: is a file; a model is a directory (config.json, weights) or a .gguf file"
        )
    if path.suffix.lower() == ".gguf":
        raise ModelError(f"{path}: no such GGUF file")
    if not HUB_ID.match(text) or text.startswith((".", "~")):
        raise ModelError(
            f"{text}: no such model directory, and not a built-in name "
            f"({', '.join(sorted(BUILTIN))}) or a hub id"
        )
    return _resolve_hub(text)


def _resolve_gguf(spec: str, gguf: Path) -> ResolvedModel:
    """The cached de-quantized copy of ``gguf``, made now when there is none."""
    try:
        with gguf.open("rb") as stream:
            magic = stream.read(len(GGUF_MAGIC))
    except OSError as error:
        raise ModelError(f"{gguf}: cannot read it ({error.strerror or error})") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{gguf}: not a GGUF file (it does not start with the bytes 'GGUF')")
    sha = gguf_sha256(gguf)
    target = cache_dir() / "models" / f"{GGUF_PREFIX}{sha[:16]}"
    if not (target / MANIFEST_NAME).is_file():
        convert_gguf(gguf, sha, target)
    return ResolvedModel(spec, target, "gguf", revision=sha, gguf=gguf)


@lru_cache(maxsize=16)
def _resolve_hub(repo_id: str) -> ResolvedModel:
    """Fetch (or find in the hub cache) a repo's safetensors, config and tokenizer files, once per
    process; pickle weights are never downloaded."""
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
            )
        )
    except Exception as error:  # network, auth, missing repo: all end the same way for the user
        raise ModelError(
            f"{repo_id}: not a built-in name or local directory, and the Hugging Face hub could "
            f"not provide it ({type(error).__name__}); download it where the hub is reachable "
            f"(`hf download {repo_id}`) or pass a local model directory"
        ) from error
    return ResolvedModel(repo_id, snapshot, "hub", revision=snapshot.name)
