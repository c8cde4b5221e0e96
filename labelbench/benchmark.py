"""``labelbench run``: data sets x labelers x prompt variants, labelled through the cache.

Everything that can be checked without a model is checked first: the config, every data file,
every variant and its templates. Then each labeler is loaded once and runs every variant of
every data set; the results table is ``labelbench.rundir.ResultRow``s.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelbench.config import (
    DATA_DIR_ENV,
    HUB_ID,
    SERVED,
    DatasetSpec,
    LabelerSpec,
    RunConfig,
    resolve_data_path,
)
from labelbench.data import Comparison, load_comparisons
from labelbench.data.judges import load_pandalm_judge
from labelbench.data.loaders import empty_note, skipped_note
from labelbench.data.select import Filters, apply_filters, sample
from labelbench.errors import InputError, check_writable_dir
from labelbench.labeling.labeler import open_labeler
from labelbench.prompting import Variant, load_variant
from labelbench.rundir import (
    CONFIG,
    RESULTS,
    RUN_RECORD,
    ResultRow,
    RunRecord,
    clear_derived,
    item_columns,
    write_config,
    write_file,
    write_results,
)


@dataclass(frozen=True)
class PreparedDataset:
    spec: DatasetSpec
    items: list[Comparison]
    variants: list[Variant]
    baselines: dict[str, dict[str, float | None]]


def _load_dataset(spec: DatasetSpec, data_dir: Path | None, seed: int) -> list[Comparison]:
    source = resolve_data_path(spec.path, data_dir)
    if Path(source).suffix and not Path(source).exists():  # a file name, found nowhere
        searched = f"{data_dir} or the current folder" if data_dir else "the current folder"
        raise InputError(
            spec.path,
            f"no such file in {searched}; pass --data-dir (or set {DATA_DIR_ENV}) to the "
            "folder holding it, or give its full path",
            field=f"datasets.{spec.name}.path",
        )
    loaded = load_comparisons(
        source,
        spec.format,
        columns=spec.map,
        split=spec.split,
        config=spec.hub_config,
        skip_invalid=spec.skip_invalid,
    )
    if loaded.invalid:
        print(skipped_note(loaded), file=sys.stderr)
    if note := empty_note(loaded):
        print(note, file=sys.stderr)
    filters = Filters(
        confidence=spec.confidence,
        drop_ties=spec.drop_ties,
        max_chars=spec.max_chars,
        drop_diverging=spec.drop_diverging,
    )
    kept, _ = apply_filters(loaded, filters)
    return sample(kept, spec.sample, seed if spec.seed is None else spec.seed)


def _baselines(spec: DatasetSpec, data_dir: Path | None) -> dict[str, dict[str, float | None]]:
    return {
        name: load_pandalm_judge(resolve_data_path(path, data_dir))
        for name, path in (spec.baselines or {}).items()
    }


def prepare(config: RunConfig, data_dir: Path | None) -> list[PreparedDataset]:
    """Load and cut every data set and load every variant: all input errors surface here."""
    variants = {name: load_variant(name) for name in config.variants}
    prepared = []
    for spec in config.datasets:
        items = _load_dataset(spec, data_dir, config.seed)
        if not items:
            raise InputError(
                spec.path, "no comparisons left after the filters", field=f"datasets.{spec.name}"
            )
        names = spec.variants or config.variants
        chosen = [variants.get(n) or load_variant(n) for n in names]
        task = items[0].task
        matching = [v for v in chosen if v.spec.task == task]
        if spec.variants and len(matching) < len(chosen):
            wrong = next(v.name for v in chosen if v.spec.task != task)
            raise InputError(
                spec.path,
                f"variant {wrong} is for another task than '{task}'",
                field=f"datasets.{spec.name}.variants",
            )
        if not matching:
            raise InputError(
                spec.path,
                f"none of the run's variants is for task '{task}'",
                field=f"datasets.{spec.name}",
            )
        prepared.append(PreparedDataset(spec, items, matching, _baselines(spec, data_dir)))
    return prepared


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _rows(
    dataset: PreparedDataset,
    labeler: str,
    variant: Variant,
    preferences: Sequence[Any],
    label_rows: Sequence[Any],
    params: int | None,
    *,
    served: bool = False,
    samples: int = 1,
) -> list[ResultRow]:
    by_id = {item.id: item for item in dataset.items}
    costs: dict[str, list[float]] = {}
    unparsed: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for row in label_rows:
        cost = costs.setdefault(row.item_id, [0, 0, 0.0, 0, 0, 0, 0])
        cost[0] += row.prompt_tokens
        cost[1] += row.generated_tokens
        cost[2] += row.seconds
        cost[3] += row.requests
        cost[4] += row.unparsed
        cost[5] += sum(1 for sample in row.samples if not sample.rationale.strip())
        cost[6] += len(row.samples)
        kinds[row.item_id] = row.kind
        unparsed.setdefault(row.item_id, []).extend(unparsed_replies(row))
    spec = variant.spec
    sc = spec.self_consistency
    rows = []
    for pref in preferences:
        item = by_id[pref.item_id]
        row: dict[str, Any] = {
            "dataset": dataset.spec.name,
            "labeler": labeler,
            "variant": variant.name,
            **item_columns(item),
            "ai_pref_a": _nan(pref.p_a),
            "ai_pref_a_ab": _nan(pref.p_a_ab),
            "ai_pref_a_ba": _nan(pref.p_a_ba),
            "ai_logodds_a_ab": _nan(pref.logodds_ab),
            "ai_logodds_a_ba": _nan(pref.logodds_ba),
            "prompt_tokens": costs[item.id][0],
            "gen_tokens": costs[item.id][1],
            "seconds": costs[item.id][2],
            "n_exemplars": spec.shots,
            "cot": spec.cot,
            "sc_n": sc.n if sc else 1,
            "temperature": sc.temperature if sc else 0.0,
            "labeler_params": params,
            "label_kind": _label_kind(kinds[item.id], samples),
            "requests": costs[item.id][3] if served else math.nan,
            "unparsed": costs[item.id][4],
            "unparsed_replies": unparsed[item.id],
            "empty_rationales": costs[item.id][5] if spec.cot else math.nan,
            "rationales": costs[item.id][6] if spec.cot else math.nan,
        }
        for name, labels in dataset.baselines.items():
            row[f"baseline_{name}_pref_a"] = _nan(labels.get(item.id))
        rows.append(ResultRow.model_validate(row))
    return rows


def _label_kind(kind: str, samples: int) -> str:
    """``logprobs``, ``verdict`` (one reply a request: a hard label) or ``verdict x N``."""
    return f"{kind} x{samples}" if kind == "verdict" and samples > 1 else kind


def unparsed_replies(row: Any) -> list[str]:
    """The raw text of a label's replies (or rationales) whose verdict could not be read."""
    if row.kind != "verdict":
        return []
    if row.samples:
        return [s.rationale for s in row.samples if s.distribution is None]
    return [
        text for text, verdict in zip(row.replies, row.verdicts, strict=False) if verdict is None
    ]


def _provenance(command: str, seconds: float, cached: float) -> RunRecord:
    import platform

    import torch

    return RunRecord(
        command=command,
        wall_seconds=round(seconds, 1),
        cached_share=round(cached, 4),
        machine=f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, {platform.machine()}",
    )


def _datasets_of(spec: LabelerSpec, prepared: list[PreparedDataset]) -> list[PreparedDataset]:
    """The data sets a labeler runs on: all, or those whose ``labelers:`` name it."""
    return [
        dataset
        for dataset in prepared
        if not dataset.spec.labelers or {spec.name, spec.display} & set(dataset.spec.labelers)
    ]


def _check_models(labelers: list[LabelerSpec]) -> None:
    """Every built-in or hub model the run loads (a labeler's weights, a served model's
    tokenizer) is here: pulled, or in (or fetched now into) the hub cache. Raises ModelError
    naming the first one that is not, before any labelling."""
    from labelbench.models.registry import BUILTIN, resolve

    for spec in labelers:
        for name in (spec.name if spec.backend == "transformers" else None, spec.tokenizer):
            if name is None:
                continue
            hub_id = HUB_ID.match(name) and not Path(name).expanduser().exists()
            if name in BUILTIN or hub_id:
                resolve(name)  # a built-in: checks it was pulled; a hub id: once per process


def run(
    config: RunConfig,
    *,
    command: str | None = None,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> Path:
    """Label everything the config asks for and write the results table; returns the run dir.
    ``command`` (the command line) is recorded with the wall time in ``run.json``
    (``labelbench.rundir.RunRecord``)."""
    from labelbench.labeling import LabelCache, default_cache_dir, preferences

    started = time.perf_counter()
    out = check_writable_dir(Path(config.output_dir), "run directory")
    for name in (CONFIG, RESULTS, RUN_RECORD):  # an earlier run's, replaced at the end
        if (out / name).exists() and not os.access(out / name, os.W_OK):
            raise InputError(out / name, "read-only: the run could not replace it at the end")
    if use_cache:
        check_writable_dir(cache_dir or default_cache_dir(), "label cache directory")
    prepared = prepare(config, data_dir)
    _check_models([spec for spec in config.labelers if _datasets_of(spec, prepared)])
    out.mkdir(parents=True, exist_ok=True)
    # config.yaml is written with the results, at the end: a rerun into a finished run's folder
    # that stops early leaves that run's config beside its results
    cache = LabelCache(cache_dir or default_cache_dir()) if use_cache else None
    try:
        rows: list[ResultRow] = []
        cached_requests = total_requests = 0
        ran: list[LabelerSpec] = []
        for spec in config.labelers:
            datasets = _datasets_of(spec, prepared)
            if not datasets:  # no data set asks for this labeler: not even loaded
                ran.append(spec)
                continue
            labeler = open_labeler(spec)
            ran.append(labeler.spec)
            try:
                for dataset in datasets:
                    for variant in dataset.variants:
                        result = labeler.label(
                            dataset.items,
                            variant,
                            cache=cache,
                            seed=config.seed,
                            progress=progress,
                            description=f"{spec.display} {dataset.spec.name} {variant.name}",
                            require_scores=True,
                        )
                        cached_requests += sum(row.cached for row in result.rows)
                        total_requests += len(result.rows)
                        rows += _rows(
                            dataset,
                            spec.display,
                            variant,
                            preferences(result.rows),
                            result.rows,
                            labeler.parameters,
                            served=spec.backend in SERVED,
                            samples=labeler.spec.samples or 1,
                        )
            finally:
                labeler.close()
        clear_derived(out)  # an earlier run's figures must not stand beside these results
        # the config as it ran: each labeler's chat mode and dtype resolved (winner.json reads it)
        write_config(config.model_copy(update={"labelers": ran}), out)
    finally:
        if cache is not None:
            cache.close()
    write_results(rows, out)
    if command is not None:
        cached = cached_requests / total_requests if total_requests else 0.0
        write_file(_provenance(command, time.perf_counter() - started, cached), out / RUN_RECORD)
    return out
