"""SHA-256 of model files: single files read in 1 MiB blocks, a directory's safetensors weights,
and a GGUF file's hash remembered per file state within a process."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

CHUNK = 1 << 20


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


def gguf_sha256(path: Path) -> str:
    """The file's SHA-256 (hex), read in 1 MiB blocks; remembered per file state in a process,
    so naming the same GGUF again costs a ``stat``."""
    stat = path.stat()
    return _cached_sha256(path, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _cached_sha256(path: Path, inode: int, size: int, mtime_ns: int) -> str:
    return sha256_file(path)
