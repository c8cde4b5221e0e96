"""The run config's schema: every key of a run config (``config.yaml``) and of ``labelbench
serve``'s settings, one pydantic model per section, with its checks of one value or section.
Checks against the registries (variants, built-in models, formats) and reading the file are
``labelbench.config``'s."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from labelbench.data.formats import ColumnMap
from labelbench.yamlio import StrictYamlModel


class LocatedError(ValueError):
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
    decode_memory_gib: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="transformers: memory for the keys and values of rationales being decoded, "
        "in GiB (default 4; never fewer than 4,096 tokens' worth); more lets more chains of "
        "thought decode at once, each step cheaper per chain",
    )
    compile: bool | None = Field(
        default=None,
        strict=True,
        description="transformers: run each decoder layer but its attention as a compiled graph "
        "(torch.compile; needs a C++ compiler) for scoring and rationale prompts: 1.2-1.4x "
        "faster after 5-10 s of compiling; true, false, or auto (the default, also null): on "
        "for CPU models of 50M parameters or more",
    )
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

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_auto(cls, value: object) -> object:
        """``auto`` is the default (None); anything but true, false or null is refused."""
        return None if value == "auto" else value

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
        if self.backend != "transformers":
            for field in ("compile", "decode_memory_gib"):  # the in-process engine's settings
                if getattr(self, field) is not None:
                    raise LocatedError((field,), f"{field} is for backend 'transformers'")
        chat_only = ("logprobs", "prefill", "samples", "temperature")
        if self.backend != "chat":
            for field in chat_only:
                if getattr(self, field) is not None:
                    raise LocatedError((field,), f"{field} is for backend 'chat'")
        else:
            if self.chat is False:
                raise LocatedError(
                    ("chat",), "backend 'chat' sends chat messages; use backend 'http' for text"
                )
            if self.tokenizer:
                raise LocatedError(
                    ("tokenizer",), "backend 'chat' uses the server's chat template; no tokenizer"
                )
            if self.logprobs is not False and (self.samples or 1) > 1:
                raise LocatedError(
                    ("samples",), "samples > 1 is for verdict judges (logprobs: false)"
                )
            if self.temperature is not None and (self.samples or 1) == 1:
                raise LocatedError(
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
        """The labeler's name in reports: its ``label``, else its ``name``."""
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
                    raise LocatedError(
                        ("datasets", index, "labelers"),
                        f"labeler {name!r} is not one of the run's labelers "
                        f"({', '.join(spec.display for spec in self.labelers)})",
                    )
        return self

    @property
    def reference(self) -> str:
        """The variant others are compared with: ``reference_variant``, else the first."""
        return self.reference_variant or self.variants[0]
