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
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from labelbench.data.formats import ColumnMap
from labelbench.errors import InputError
from labelbench.yamlio import StrictYamlModel, repeated_yaml_key, yes_no_yaml_key
from labelbench.yamlio import field_types as _types
from labelbench.yamlio import key_path as _key_path
from labelbench.yamlio import line_of as _line_of

DATA_DIR_ENV = "LABELBENCH_DATA_DIR"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class _LocatedError(ValueError):
    """A validation error at a key path other than where the validator runs."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class DatasetSpec(StrictYamlModel):
    """One human-preference data set and how to cut it."""

    name: str = Field(min_length=1, description="label used in reports; unique in the run")
    path: str = Field(
        min_length=1, description="file, saved-dataset folder, or hub dataset hf:owner/name"
    )
    format: str | None = None
    map: ColumnMap | None = Field(
        default=None,
        description="columns of your own table (format 'columns'): a mapping, or the --map text",
    )
    skip_invalid: bool = Field(
        default=False, description="skip bad records (counted and listed) instead of stopping"
    )
    split: str | None = None
    hub_config: str | None = Field(default=None, description="config name of a hub dataset")
    confidence: list[int] | None = Field(
        default=None, description="keep TL;DR items whose 1-9 confidence is listed"
    )
    drop_ties: bool = False
    drop_diverging: bool = Field(
        default=False,
        description="drop pairs whose conversations differ before the final reply",
    )
    max_chars: int | None = Field(default=None, gt=0)
    sample: int | None = Field(default=None, gt=0, description="items drawn, seeded")
    seed: int | None = Field(default=None, description="sample seed; the run seed by default")
    variants: list[str] | None = Field(
        default=None, description="variants run on this data set (names or globs); default: all"
    )
    labelers: list[str] | None = Field(
        default=None,
        description="labelers run on this data set (their names or labels); default: all",
    )
    baselines: dict[str, str] = Field(
        default_factory=dict,
        description="published AI judges' labels shipped beside the data: name -> file",
    )

    @model_validator(mode="before")
    @classmethod
    def _map_text(cls, data: object) -> object:
        """``map:`` may be the ``--map`` text of ``labelbench data inspect``."""
        if isinstance(data, dict) and isinstance(data.get("map"), str):
            return {**data, "map": ColumnMap.pairs(data["map"])}
        return data

    @model_validator(mode="after")
    def _confidence_range(self) -> DatasetSpec:
        bad = [value for value in self.confidence or [] if not 1 <= value <= 9]
        if bad:
            raise ValueError(f"confidence values must be 1-9, got {bad}")
        return self

    @model_validator(mode="after")
    def _map_for_columns(self) -> DatasetSpec:
        if self.map is not None:
            if self.format not in (None, "columns"):
                raise ValueError(f"map is for format 'columns', not {self.format!r}")
            self.map.check()
        elif self.format == "columns":
            raise ValueError("format 'columns' needs a map of your columns")
        return self


SERVED = ("http", "chat")
"""Backends that reach a model served elsewhere, over HTTP."""


class LabelerSpec(StrictYamlModel):
    """A model that labels: a builtin name, a local model folder, a local .gguf file or a hub id
    (``transformers``, ``vllm``), or the model a server serves (``http``: its completions
    endpoint; ``chat``: its chat-completions endpoint, one server or a fleet)."""

    name: str = Field(min_length=1)
    label: str | None = Field(default=None, description="name shown in reports")
    backend: Literal["transformers", "http", "vllm", "chat"] = "transformers"
    chat: bool | None = Field(default=None, description="use the chat template; auto if unset")
    max_tokens: int | None = Field(default=None, gt=0, description="prompt token budget")
    batch_size: int = Field(default=8, gt=0)
    url: str | list[str] | None = Field(
        default=None,
        description="http, chat: the server's API base, .../v1; chat: a list of servers of the "
        "same model is a fleet (requests go to the least loaded; a failing one is drained)",
    )
    logprobs: bool | None = Field(
        default=None,
        description="chat: read the answer from the first generated token's top log-probabilities "
        "(default: true); false: a verdict judge, the answer is read from the reply's text",
    )
    top_logprobs: int = Field(
        default=20, ge=2, le=20, description="chat: top log-probabilities asked for (at most 20)"
    )
    prefill: bool | None = Field(
        default=None,
        description="chat: the server continues an assistant prefix (vLLM/SGLang "
        "continue_final_message, llama.cpp's server), so the variant's ending opens the reply and "
        "the first generated token is the answer; false (default): the ending becomes an "
        "instruction to answer with the answer alone",
    )
    samples: int | None = Field(
        default=None,
        gt=0,
        description="chat verdict judges: replies drawn per request (default 1: a hard label); "
        "n > 1 gives soft labels from the verdicts' shares at n times the generated tokens",
    )
    temperature: float | None = Field(
        default=None,
        ge=0,
        description="chat verdict judges with samples > 1: sampling temperature (default 1.0)",
    )
    max_retries: int = Field(
        default=8, ge=0, description="http, chat: retries of a failed request before giving up"
    )
    price_input: float | None = Field(
        default=None,
        ge=0,
        description="chat, http: price per million prompt tokens (hosted APIs), for the report",
    )
    price_output: float | None = Field(
        default=None,
        ge=0,
        description="chat, http: price per million generated tokens (hosted APIs), for the report",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="http: environment variable holding the API key"
    )
    tokenizer: str | None = Field(
        default=None,
        description="http: the served model's tokenizer (built-in name, folder or hub id): "
        "prompts go as token ids, with the chat template and token budgets of the other backends",
    )
    concurrency: int = Field(default=8, gt=0, description="http: requests in flight")
    timeout: float = Field(default=60.0, gt=0, description="http: seconds per request")
    max_retry_after: float = Field(
        default=60.0,
        ge=0,
        description="http: longest wait, in seconds, a server's Retry-After header may ask for",
    )
    device: str | None = Field(
        default=None, description="cpu, cuda or cuda:N; default: CUDA when available, else cpu"
    )
    dtype: Literal["float32", "bfloat16"] | None = Field(
        default=None,
        description="precision of weights and activations; default: the model's measured default "
        "(`labelbench models info`), float32 for models not built in",
    )
    parameters: int | None = Field(
        default=None,
        gt=0,
        description="parameter count for the size plots, for backends that cannot count them "
        "(http, vllm); the transformers backend counts them at load and its count is used",
    )
    identity: str | None = Field(
        default=None,
        description="what the weights are, for the label cache (e.g. 'Qwen/Qwen2.5-7B@<commit>'); "
        "replaces the derived weights hash or endpoint; backend, chat mode and dtype are "
        "always added",
    )

    @field_validator("device")
    @classmethod
    def _device_name(cls, device: str | None) -> str | None:
        """A device name torch and labelbench know (whether it exists here is checked when the
        labeler opens, or by the run config's checks)."""
        if device is not None and not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
        return device

    @field_validator("url")
    @classmethod
    def _urls(cls, url: str | list[str] | None) -> str | list[str] | None:
        """One URL, or a non-empty list of distinct ones (a fleet)."""
        if isinstance(url, list):
            if not url:
                raise ValueError("an empty list of urls; give one server or several")
            if any(not part.strip() for part in url):
                raise ValueError("an empty url in the list")
            if len(set(url)) != len(url):
                raise ValueError("a url is listed twice")
            return url[0] if len(url) == 1 else url
        if url is not None and not url.strip():
            raise ValueError("an empty url")
        return url

    @model_validator(mode="after")
    def _url_for_http(self) -> LabelerSpec:
        if self.backend in SERVED and not self.url:
            raise ValueError(f"backend {self.backend!r} needs a url")
        if self.backend != "chat" and isinstance(self.url, list):
            raise ValueError("a list of urls (a fleet) is for backend 'chat'")
        chat_only = ("logprobs", "prefill", "samples", "temperature")
        if self.backend != "chat":
            for field in chat_only:
                if getattr(self, field) is not None:
                    raise _LocatedError((field,), f"{field} is for backend 'chat'")
        else:
            if self.chat is False:
                raise _LocatedError(
                    ("chat",), "backend 'chat' sends chat messages; use backend 'http' for text"
                )
            if self.tokenizer:
                raise _LocatedError(
                    ("tokenizer",), "backend 'chat' uses the server's chat template; no tokenizer"
                )
            if self.logprobs is not False and (self.samples or 1) > 1:
                raise _LocatedError(
                    ("samples",), "samples > 1 is for verdict judges (logprobs: false)"
                )
            if self.temperature is not None and (self.samples or 1) == 1:
                raise _LocatedError(
                    ("temperature",), "temperature is for samples > 1 (one reply is greedy)"
                )
        if self.backend == "http" and self.chat and not self.tokenizer:
            raise ValueError(
                "backend 'http' with chat needs the served model's tokenizer (set tokenizer) "
                "for its chat template"
            )
        if self.tokenizer and self.backend != "http":
            raise ValueError("tokenizer is for backend 'http'; the others load the model's own")
        return self

    @property
    def display(self) -> str:
        return self.label or self.name


Mode = Literal["direct", "pairwise"]


class ServeSettings(StrictYamlModel):
    """How ``labelbench serve`` batches, bounds and answers requests (its CLI options)."""

    mode: Mode = Field(default="direct", description="direct score, or pairwise vs a reference")
    max_batch: int = Field(default=64, gt=0, description="items per engine pass")
    max_wait_ms: float = Field(default=5.0, ge=0, description="wait for more items to batch")
    queue_size: int = Field(default=4096, gt=0, description="items waiting; more → 503")
    timeout: float = Field(default=120.0, gt=0, description="seconds per request; then 504")
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="larger bodies → 413")
    max_items: int = Field(default=1024, gt=0, description="items per request")
    max_item_tokens: int | None = Field(
        default=None,
        gt=0,
        description="tokens per item (prompt, response and reference), counted before any "
        "forward pass; more → 413. Default: the labeler's context limit",
    )


class CostBudget(StrictYamlModel):
    """Limits on cost per labelled pair for choosing the winner."""

    max_tokens_per_pair: float | None = Field(default=None, gt=0)
    max_seconds_per_pair: float | None = Field(default=None, gt=0)


class AnalysisSpec(StrictYamlModel):
    """How the metrics are computed."""

    bootstrap: int = Field(default=1000, ge=10, description="bootstrap resamples")
    level: float = Field(default=0.95, gt=0, lt=1, description="interval coverage")
    length_gap: float = Field(
        default=0.1, gt=0, lt=1, description="relative length gap: above = length-biased pair"
    )
    calibration_bins: int = Field(default=10, ge=2)
    winner_aggregation: Literal[
        "auto", "prob-mean", "logodds-mean", "calibrated", "length-controlled", "stacked"
    ] = Field(
        default="auto",
        description="how winner.json's soft labels are made (labelbench.aggregate): auto = the "
        "single-labeler method with the lowest cross-fitted log-loss against the human labels",
    )


class RunConfig(StrictYamlModel):
    """A benchmark run: data sets x labelers x prompt variants."""

    datasets: list[DatasetSpec] = Field(min_length=1)
    labelers: list[LabelerSpec] = Field(min_length=1)
    variants: list[str] = Field(min_length=1, description="names or glob patterns")
    reference_variant: str | None = None
    seed: int = 0
    output_dir: Path
    data_dir: Path | None = None
    cost_budget: CostBudget | None = None
    analysis: AnalysisSpec = AnalysisSpec()

    @model_validator(mode="after")
    def _dataset_labelers_exist(self) -> RunConfig:
        known = {name for spec in self.labelers for name in (spec.name, spec.display)}
        for index, dataset in enumerate(self.datasets):
            for name in dataset.labelers or []:
                if name not in known:
                    raise _LocatedError(
                        ("datasets", index, "labelers"),
                        f"labeler {name!r} is not one of the run's labelers "
                        f"({', '.join(spec.display for spec in self.labelers)})",
                    )
        return self

    @property
    def reference(self) -> str:
        return self.reference_variant or self.variants[0]


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
        if isinstance(located, _LocatedError):  # its key path, under the model that raised it
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
