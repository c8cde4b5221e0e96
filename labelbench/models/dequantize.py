"""GGUF to float32 safetensors: a GGUF (a built-in's, or a user's own file) is de-quantized once
with transformers and saved as a model directory in the cache, built aside and renamed into place
so an interrupted build leaves nothing half-made. A user's GGUF goes to
``cache_dir()/models/gguf-<16 hex of its SHA-256>``."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelbench.errors import InputError, ModelError, check_writable_dir
from labelbench.models.directory import describe_directory
from labelbench.models.hashing import weights_sha256
from labelbench.models.manifests import (
    CACHE_ENV,
    MANIFEST_NAME,
    ProgressFn,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' own logging and tqdm bars (the CLI shows its own progress)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(level)


def load_gguf(gguf_path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a GGUF with transformers, de-quantizing every weight to float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # the weights are dense already; drop the GGUF loading state
        quantizer.remove_quantization_config(model)
    return model.eval(), tokenizer


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("labelbench", "transformers", "torch", "gguf", "safetensors", "tokenizers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _remove_abandoned_pulls(parent: Path, name: str) -> None:
    """Delete the work directories of earlier pulls of ``name`` whose process has died."""
    for work in parent.glob(f".{name}.partial-*"):
        pid = work.name.removeprefix(f".{name}.partial-").split("-")[0]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(work, ignore_errors=True)
        except PermissionError:  # alive, owned by someone else
            continue


@contextmanager
def building(target: Path) -> Iterator[Path]:
    """Yield an empty directory to build a model in; on success it replaces ``target``.

    The directory lives in a hidden work directory next to ``target`` (same file system, so the
    final rename is atomic) that is always removed, so an interrupted build leaves no half-made
    model; work left by a killed process is removed by the next build of the same target.
    Raises OSError when the cache directory cannot be written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_pulls(target.parent, target.name)
    work = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent)
    )
    try:
        built = work / target.name
        built.mkdir()
        yield built
        if target.exists():
            target.rename(work / "previous")
        built.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def dequantize_gguf(
    gguf_path: Path,
    built: Path,
    manifest: dict[str, Any],
    context_length: int | None = None,
    progress: ProgressFn | None = None,
) -> None:
    """De-quantize ``gguf_path`` to float32 and save it in ``built`` as a model directory:
    safetensors weights, config, tokenizer and ``MANIFEST_NAME`` (``manifest`` plus the weights'
    hash, parameter count, vocabulary size, context length, chat template flag, library versions
    and time). ``context_length`` None: the one the GGUF states.

    Holds one float32 copy of the model (plus transformers' loading buffers); the GGUF itself is
    memory-mapped. Raises whatever transformers raises for a file it cannot load."""
    if progress:
        progress("de-quantize", 0, None)
    model, tokenizer = load_gguf(gguf_path)
    if progress:
        progress("de-quantize", 1, 1)
        progress("save", 0, None)
    with _quiet_transformers():
        model.save_pretrained(built)
        tokenizer.save_pretrained(built)
    del model
    info = describe_directory(built)
    manifest = manifest | {
        "weights_sha256": weights_sha256(built),
        "parameters": info["parameters"],
        "vocab_size": info["vocab_size"],
        "context_length": context_length or info["context_length"],
        "chat_template": info["chat_template"],
        "versions": _versions(),
        "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (built / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


GGUF_MAGIC = b"GGUF"


GGUF_PREFIX = "gguf-"
"""A user's GGUF is de-quantized into ``gguf-<first 16 hex of the file's SHA-256>`` in the cache."""


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF file's metadata says about the model in it."""

    architecture: str
    name: str | None
    license: str | None


def gguf_in(path: Path) -> Path | None:
    """The GGUF a spec names: a ``.gguf`` file, or the only ``.gguf`` in a directory that has no
    config.json; None when the spec names no GGUF. Raises ModelError for several candidates."""
    if path.is_file():
        return path.resolve() if path.suffix.lower() == ".gguf" else None
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".gguf" and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelError(
            f"{path}: holds {len(found)} GGUF files ({names}); name the file to use instead"
        )
    return found[0].resolve() if found else None


def read_gguf_header(gguf: Path) -> GgufHeader:
    """The GGUF's architecture, name and licence, after checking the file is complete (every
    tensor's data inside it). The file is memory-mapped, not read. Raises ModelError."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(gguf)
        fields = {
            key: reader.fields[key].contents()
            for key in ("general.architecture", "general.name", "general.license")
            if key in reader.fields
        }
    except Exception as error:  # the reader raises ValueError, struct.error, ... on damage
        detail = (str(error).strip().splitlines() or [""])[0]
        raise ModelError(
            f"{gguf}: truncated or damaged GGUF file ({type(error).__name__}: {detail}); "
            f"copy or download it again"
        ) from None
    architecture = fields.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise ModelError(f"{gguf}: the GGUF states no general.architecture; cannot load it")
    return GgufHeader(architecture, fields.get("general.name"), fields.get("general.license"))


_CANNOT_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def convert_gguf(gguf: Path, sha: str, target: Path) -> None:
    """De-quantize ``gguf`` into ``target`` (built aside, renamed into place). Raises ModelError
    naming the file: damaged, unsupported by transformers, or a cache that cannot be written."""
    header = read_gguf_header(gguf)
    manifest = {
        "name": target.name,
        "description": f"{header.name or gguf.stem} ({header.architecture}), from a local GGUF",
        "license": header.license or "not stated in the GGUF",
        "source": {"gguf_file": str(gguf), "gguf_sha256": sha},
    }
    try:
        check_writable_dir(target.parent, "model cache")
        with building(target) as built:
            dequantize_gguf(gguf, built, manifest)
    except InputError as error:  # from the early check: the cache is not writable
        raise _cannot_write(gguf, target, error.message) from None
    except OSError as error:
        if error.errno not in _CANNOT_WRITE:
            raise _gguf_error(gguf, header, error) from error
        raise _cannot_write(gguf, target, error.strerror or str(error)) from error
    except Exception as error:  # transformers' errors for a file it cannot load vary by cause
        raise _gguf_error(gguf, header, error) from error
    print(f"de-quantized {gguf} once, into {target}", file=sys.stderr)


def _cannot_write(gguf: Path, target: Path, reason: str) -> ModelError:
    return ModelError(
        f"{gguf}: cannot write its de-quantized copy under {target.parent} ({reason}); "
        f"make that folder writable or set {CACHE_ENV} to one that is"
    )


def _gguf_error(gguf: Path, header: GgufHeader, error: Exception) -> ModelError:
    detail = (str(error).strip().splitlines() or [""])[0]
    return ModelError(
        f"{gguf}: transformers could not load this GGUF (architecture {header.architecture!r}; "
        f"{type(error).__name__}: {detail})"
    )
