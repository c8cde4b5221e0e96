"""A SQLite (WAL) cache of labels, safe against a process killed at any moment.

A key covers the model identity, the exact request text, the decoding parameters and the sample
index. The runner writes the rows of one work unit in one transaction, so after ``kill -9`` every
unit is either fully stored or absent, and a resumed run recomputes absent units exactly as an
uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from labelbench.errors import InputError
from labelbench.requests import RationaleRequest, Request, ScoreRequest

CACHE_FILE = "labels.sqlite"


def default_cache_dir() -> Path:
    """``$LABELBENCH_CACHE_DIR``, else ``~/.cache/labelbench``."""
    configured = os.environ.get("LABELBENCH_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "labelbench"


def request_key(identity: str, request: Request, sample: int = 0) -> str:
    """The cache key of one sample of one request under one model."""
    if isinstance(request, ScoreRequest):
        decoding: dict[str, Any] = {"kind": "score"}
    elif isinstance(request, RationaleRequest):
        decoding = {
            "kind": "rationale",
            "score_suffix": request.score_suffix,
            "n": request.n,
            "temperature": request.temperature,
            "top_k": request.top_k,
            "max_new_tokens": request.max_new_tokens,
        }
    else:
        raise TypeError(f"not a request: {type(request).__name__}")
    payload = {
        "model": identity,
        "text": request.text,
        "answers": list(request.answers),
        "decoding": decoding,
        "sample": sample,
    }
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    return hashlib.sha256(encoded).hexdigest()


class LabelCache:
    """Maps request keys to JSON values; one SQLite file in ``directory``. Opening it raises
    InputError when the file cannot be read or written."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / CACHE_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS labels (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            self._db.commit()
            with self._db:  # a write that changes nothing: a read-only file fails here, not
                self._db.execute("DELETE FROM labels WHERE 0")  # after a unit is labelled
        except (OSError, sqlite3.Error) as error:
            raise InputError(self.path, f"cannot open the label cache: {error}") from error

    def _failed(self, doing: str, error: sqlite3.Error) -> InputError:
        """One line naming the cache file, for a disk that is full, a file locked too long or
        damaged: the labels stored so far are kept (each unit is one transaction)."""
        hint = ""
        if "full" in str(error).lower():
            hint = "; free space on that disk or set $LABELBENCH_CACHE_DIR (--cache-dir)"
        return InputError(
            self.path,
            f"cannot {doing} the label cache ({type(error).__name__}: {error}){hint}; labels "
            "stored so far are kept and a rerun resumes from them",
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored values of ``keys`` (absent keys left out); InputError naming the cache file
        when SQLite fails."""
        found: dict[str, dict[str, Any]] = {}
        try:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                query = f"SELECT key, value FROM labels WHERE key IN ({marks})"
                for key, value in self._db.execute(query, part):
                    found[key] = json.loads(value)
        except sqlite3.Error as error:
            raise self._failed("read", error) from None
        return found

    def put_many(
        self,
        items: Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, Any]],
        *,
        replace: bool = True,
    ) -> None:
        """Store all items in one transaction: all of them or none survive a crash. InputError,
        one line naming the cache file, when SQLite fails (a full disk: ``OperationalError``).
        ``replace=False`` keeps a key's stored value (labels imported from elsewhere never
        replace labels computed here)."""
        pairs = items.items() if isinstance(items, Mapping) else items
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in pairs]
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        try:
            with self._db:
                self._db.executemany(f"{verb} INTO labels (key, value) VALUES (?, ?)", rows)
        except sqlite3.Error as error:
            raise self._failed("write", error) from None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LabelCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_only_lookup(directory: str | Path, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stored values of ``keys`` in the cache under ``directory``, opened read-only (nothing is
    created or written: for views of finished runs); ``{}`` when there is no cache file or it
    cannot be read."""
    path = Path(directory) / CACHE_FILE
    if not path.is_file() or not keys:
        return {}
    found: dict[str, dict[str, Any]] = {}
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error:
        return {}
    try:
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            query = f"SELECT key, value FROM labels WHERE key IN ({marks})"
            for key, value in db.execute(query, part):
                found[key] = json.loads(value)
    except sqlite3.Error:
        return found
    finally:
        db.close()
    return found
