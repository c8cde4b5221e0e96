"""The base of the run files' models, and reading and writing them with one-line errors."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labelbench.errors import InputError, validation_problem
from labelbench.rundir.names import RUN_RECORD
from labelbench.yamlio import field_types, key_path

Number = int | float
"""A figure written as a count in some files and as a float in others (kept as it was)."""


class Record(BaseModel):
    """A part of a run file: unknown keys are errors; fields in the order they are written."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RunFile(Record):
    """A whole JSON run file, with its layout version (``schema`` in the file)."""

    version: int = Field(default=1, alias="schema", description="layout version of the file")

    def to_json(self) -> dict[str, Any]:
        """The file's content: ``schema`` first, then the keys that were set."""
        data = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        data.pop("schema", None)
        return {"schema": self.version, **data}


File = TypeVar("File", bound=RunFile)


def _read_json(path: Path, name: str, what: str) -> dict[str, Any]:
    """A JSON object from ``path`` (a UTF-8 BOM allowed); InputError naming the file."""
    if path.is_dir():
        raise InputError(path, f"is a folder; give the {name} file in it")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None
    except ValueError as error:
        raise InputError(path, f"not a JSON file: {error}") from None
    if not isinstance(data, dict):
        raise InputError(path, f"not a {what} (expected a JSON object)")
    return data


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that holds the key ``loc[-1]`` (a part of ``loc`` that is no field of the
    current model is a dict key or list index, and stays in it)."""
    current: set[Any] = {model}
    for part in loc[:-1]:
        following: set[Any] = set()
        for kind in current:
            if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
                continue
            fields = {info.alias or name: info for name, info in kind.model_fields.items()}
            fields.update(kind.model_fields)
            info = fields.get(str(part))
            following |= field_types(info.annotation) if info is not None else {kind}
        current = following
    models = [k for k in current if isinstance(k, type) and issubclass(k, BaseModel)]
    return models[0] if len(models) == 1 else None


def _misspelt(errors: Sequence[Any]) -> Any:
    """The unknown key that resembles a missing key beside it (a misspelt required key fails
    as both; the unknown key says what to fix), or None."""
    missing: dict[tuple[Any, ...], list[str]] = {}
    for problem in errors:
        if problem["type"] == "missing":
            missing.setdefault(tuple(problem["loc"][:-1]), []).append(str(problem["loc"][-1]))
    for problem in errors:
        if problem["type"] == "extra_forbidden":
            names = missing.get(tuple(problem["loc"][:-1]), [])
            if difflib.get_close_matches(str(problem["loc"][-1]), names, n=1, cutoff=0.75):
                return problem
    return None


def _validated(model: type[File], data: dict[str, Any], path: Path) -> File:
    """``model`` from ``data``; InputError naming ``path`` and the key path of the first
    problem (an unknown key close to a known one: did you mean it?)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        loc, message = validation_problem(error)
        first = _misspelt(error.errors()) or error.errors()[0]
        if first["type"] == "missing":
            message = "missing"
        elif first["type"] == "extra_forbidden":
            loc, message = tuple(first["loc"]), "unknown key"
            owner = _model_at(model, loc)
            known = list(owner.model_fields) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.75)
            if close:
                message += f"; did you mean '{close[0]}'?"
        raise InputError(path, message, field=key_path(loc) or None) from None


def _version(path: Path, data: dict[str, Any], current: int, name: str) -> None:
    """Refuse a ``schema`` this labelbench cannot read (missing: version 1)."""
    version = data.get("schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(path, f"not a layout version: {version!r}", field="schema")
    if version > current:
        raise InputError(
            path,
            f"layout version {version} is newer than this labelbench reads ({current}); "
            + (
                "update labelbench"  # written by `labelbench run`, which a report cannot redo
                if name == RUN_RECORD
                else "update labelbench, or rerun `labelbench report RUN_DIR` with this one"
            ),
            field="schema",
        )


def read_file(path: str | Path, model: type[File], name: str, what: str, current: int) -> File:
    """A JSON run file as ``model``; InputError (one line naming the file and field) when it is
    missing, not a UTF-8 JSON object, of a newer layout or not matching the model."""
    path = Path(path)
    data = _read_json(path, name, what)
    _version(path, data, current, name)
    return _validated(model, data, path)


def write_file(record: RunFile, path: str | Path) -> Path:
    """Write a JSON run file: ``record.to_json()``, two-space indented, no NaN (OSError when it
    cannot be written)."""
    text = json.dumps(record.to_json(), indent=2, allow_nan=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")
    return Path(path)
