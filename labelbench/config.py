"""The benchmark run config: a YAML file validated before any model loads.

Every error names the config file, the YAML line when known, and the key path
(``labelers[1].backend``). Relative paths in the config (``output_dir``, local data files or
model folders) are taken relative to the current directory, as on the command line.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from labelbench.config_schema import (
    SERVED,
    AnalysisSpec,
    CostBudget,
    DatasetSpec,
    LabelerSpec,
    LocatedError,
    Mode,
    RunConfig,
    ServeSettings,
)
from labelbench.errors import InputError
from labelbench.yamlio import field_types as _types
from labelbench.yamlio import key_path as _key_path
from labelbench.yamlio import line_of as _line_of
from labelbench.yamlio import repeated_yaml_key, yes_no_yaml_key

DATA_DIR_ENV = "LABELBENCH_DATA_DIR"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

__all__ = [
    "DATA_DIR_ENV",
    "HUB_ID",
    "SERVED",
    "AnalysisSpec",
    "CostBudget",
    "DatasetSpec",
    "LabelerSpec",
    "Mode",
    "RunConfig",
    "ServeSettings",
    "load_config",
    "load_saved_config",
    "parse_config",
    "resolve_data_dir",
    "resolve_data_path",
    "save_config",
]
"""Reading and checking a run config is defined here; its schema (``labelbench.config_schema``)
is imported from here as well."""


def _error(
    path: Path, root: yaml.Node | None, loc: Sequence[str | int], message: str
) -> InputError:
    return InputError(
        path, message, line=_line_of(root, loc), field=_key_path(loc) if loc else None
    )


# ---------------------------------------------------------------------------- name checks


def _variant_names() -> list[str] | None:
    """The prompt variants the prompting engine knows, or None when it is not available."""
    try:
        from labelbench.prompting import list_variants
    except ImportError:
        return None
    return sorted(list_variants())


def _builtin_labelers() -> list[str] | None:
    """Builtin model names from the model registry."""
    from labelbench.models.registry import BUILTIN

    return sorted(BUILTIN)


def _data_formats() -> list[str] | None:
    from labelbench.data.formats import ALL_FORMATS

    return list(ALL_FORMATS)


def _expand_variants(patterns: list[str], known: list[str] | None) -> tuple[list[str], int | None]:
    """Variant names with glob patterns expanded; the index of a pattern that matches nothing."""
    if known is None:
        return list(dict.fromkeys(patterns)), None
    names: list[str] = []
    for index, pattern in enumerate(patterns):
        matches = fnmatch.filter(known, pattern)
        if not matches:
            return names, index
        names.extend(matches)
    return list(dict.fromkeys(names)), None


def _labeler_problem(spec: LabelerSpec, builtins: list[str] | None) -> str | None:
    if spec.backend in SERVED or builtins is None or spec.name in builtins:
        return None
    path = Path(spec.name).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".gguf"):
        return None
    if path.suffix.lower() == ".gguf":
        return f"GGUF file {spec.name!r} does not exist"
    if path.is_file():
        return f"{spec.name!r} is a file; a model is a folder or a .gguf file"
    looks_like_path = spec.name.startswith((".", "/", "~")) or os.sep in spec.name.strip("/")
    if HUB_ID.match(spec.name) and not Path(spec.name).parent.is_dir():
        return None
    if looks_like_path:
        return f"model folder {spec.name!r} does not exist"
    known = ", ".join(builtins)
    return f"unknown labeler {spec.name!r}; builtins: {known}, or a folder, .gguf file or hub id"


def _device_problem(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine (no CUDA, unknown name), or None."""
    from labelbench.errors import ModelError
    from labelbench.models.registry import resolve_device

    try:
        resolve_device(device)
    except ModelError as error:
        return str(error)
    return None


def _check_names(
    config: RunConfig,
    path: Path,
    root: yaml.Node | None,
    *,
    variants: Callable[[], list[str] | None] = _variant_names,
    builtins: Callable[[], list[str] | None] = _builtin_labelers,
    formats: Callable[[], list[str] | None] = _data_formats,
) -> RunConfig:
    known_formats = formats()
    names: set[str] = set()
    for index, dataset in enumerate(config.datasets):
        if dataset.name in names:
            raise _error(path, root, ["datasets", index, "name"], f"duplicate {dataset.name!r}")
        names.add(dataset.name)
        if dataset.format and known_formats is not None and dataset.format not in known_formats:
            raise _error(
                path,
                root,
                ["datasets", index, "format"],
                f"unknown format {dataset.format!r}; one of {', '.join(known_formats)}",
            )
    known_variants = variants()
    datasets = []
    for index, dataset in enumerate(config.datasets):
        if dataset.variants is not None:
            chosen, missing = _expand_variants(dataset.variants, known_variants)
            if missing is not None:
                loc = ["datasets", index, "variants", missing]
                raise _error(path, root, loc, f"unknown variant {dataset.variants[missing]!r}")
            dataset = dataset.model_copy(update={"variants": chosen})
        datasets.append(dataset)
    known_builtins = builtins()
    shown: set[str] = set()
    for index, labeler in enumerate(config.labelers):
        problem = _labeler_problem(labeler, known_builtins)
        if problem:
            raise _error(path, root, ["labelers", index, "name"], problem)
        if labeler.device is not None and known_builtins is not None:
            problem = _device_problem(labeler.device)
            if problem:
                raise _error(path, root, ["labelers", index, "device"], problem)
        if labeler.display in shown:
            raise _error(path, root, ["labelers", index], f"duplicate labeler {labeler.display!r}")
        shown.add(labeler.display)
    expanded, missing = _expand_variants(config.variants, known_variants)
    if missing is not None:
        raise _error(
            path,
            root,
            ["variants", missing],
            f"unknown variant {config.variants[missing]!r}; `labelbench prompts list` shows them",
        )
    reference = config.reference_variant or expanded[0]
    if reference not in expanded:
        raise _error(
            path, root, ["reference_variant"], f"{reference!r} is not among the run's variants"
        )
    update = {"variants": expanded, "reference_variant": reference, "datasets": datasets}
    return config.model_copy(update=update)


# ---------------------------------------------------------------------------- loading


def parse_config(text: str, path: Path, **checks: Callable[[], list[str] | None]) -> RunConfig:
    """Validate config text; ``checks`` replace the registries (for tests)."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or error
        raise InputError(path, f"invalid YAML: {problem}", line=line) from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of settings (datasets, labelers, variants, ...)")
    repeated = repeated_yaml_key(root)
    if repeated:
        loc, line, first = repeated
        raise InputError(
            path, f"given twice (first on line {first})", line=line, field=_key_path(loc)
        )
    yes_no = yes_no_yaml_key(root)
    if yes_no:
        loc, line, key = yes_no
        raise InputError(
            path,
            f"the key {key} is a YAML yes/no value, which would be taken for the same key as "
            f"1 or 0; quote it ('{key}') to mean the text or a true/false label value",
            line=line,
            field=_key_path(loc),
        )
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        # a misspelt key also leaves the right one missing: name the misspelling first
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        first = unknown[0] if unknown else errors[0]
        loc = [part for part in first["loc"] if isinstance(part, (str, int))]
        located = (first.get("ctx") or {}).get("error")
        if isinstance(located, LocatedError):  # its key path, under the model that raised it
            loc = [*loc, *located.loc]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key" + _did_you_mean(loc)
        raise _error(path, root, loc, message) from None
    return _check_names(config, path, root, **checks)


def _did_you_mean(loc: Sequence[str | int]) -> str:
    """``; did you mean 'variants'?`` for an unknown key at ``loc`` close to a known one."""
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        nested = [
            t
            for t in _types(field.annotation if field else None)
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if not nested:
            return ""
        model = nested[0]
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(path, f"cannot read config: {error.strerror or error}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, "cannot read config: it is UTF-16; save it as UTF-8", line=1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise InputError(
            path, f"cannot read config: invalid UTF-8 at column {column}", line=line
        ) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run config; raises InputError naming the file, line and key."""
    path = Path(path)
    return parse_config(_read_text(path), path)


def save_config(config: RunConfig, path: Path) -> None:
    """Write the validated config (variants expanded) next to a run's results."""
    data = config.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def resolve_data_dir(option: Path | None, config: RunConfig | None = None) -> Path | None:
    """Where local copies of data files live: the --data-dir option, then the
    LABELBENCH_DATA_DIR environment variable, then the config's ``data_dir``."""
    if option is not None:
        return option
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    return config.data_dir.expanduser() if config is not None and config.data_dir else None


def resolve_data_path(path: str, data_dir: Path | None) -> str:
    """A data file under ``data_dir`` when it is there, else the path or hub id as given;
    ``~`` at the start is the home folder, as in a shell."""
    if path.startswith("~"):
        return str(Path(path).expanduser())
    if data_dir is not None and not Path(path).is_absolute():
        local = Path(data_dir) / path
        if local.exists():
            return str(local)
    return path


def load_saved_config(path: Path) -> RunConfig:
    """A config a run saved beside its results (``labelbench.rundir.read_config``), checked for
    its schema only: models and variants are not looked up again. Raises InputError naming the
    file."""
    return parse_config(_read_text(path), path, variants=_none, builtins=_none, formats=_none)


def _none() -> None:
    return None
