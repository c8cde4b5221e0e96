"""What the item view shows, gathered from a run folder, the data folder and the label cache.

The results table holds ids and figures, never texts. The texts are read again from the data
files the run's ``config.yaml`` names (cut exactly as the run cut them: ``benchmark.prepare``), and
every prompt is planned again as the labeler planned it: its tokenizer, chat mode, token budget
and the run's seed (``labeling.labeler.prompt_view``). Where the label cache holds a prompt's
label, its key (a hash of the exact text) proves the text shown is the one sent, and a chain of
thought's rationales are read from it.

Strings are stored once (``strings``) and referred to by index, item by item, so that a run
with many cells on the same items stays small once compressed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelbench.config import LabelerSpec, RunConfig
from labelbench.data.record import Comparison
from labelbench.errors import InputError
from labelbench.labeling.labeler import PromptView, prompt_view
from labelbench.prompting import Variant, load_variant
from labelbench.requests import PlannedRequest, RationaleRequest
from labelbench.rundir import CONFIG, baseline_columns, read_config, read_results

CONFIDENT = 0.25
"""A confident mistake: the labeler's P(A) at least this far from 1/2, on the other side from
the humans' (the page lets a reader change it)."""


@dataclass
class _Strings:
    """Each distinct string once, in first-use order."""

    values: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, text: str | None) -> int | None:
        if text is None:
            return None
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.values)
            self.values.append(text)
        return found


def _number(value: Any) -> float | None:
    """A finite float, else None (JSON has no NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _logit(p: float | None) -> float | None:
    if p is None or p <= 0 or p >= 1:
        return None
    return math.log(p / (1 - p))


def _spec_of(config: RunConfig, labeler: str) -> LabelerSpec | None:
    return next((s for s in config.labelers if s.display == labeler), None)


def _variant(name: str, loaded: Sequence[Variant]) -> Variant:
    return next((v for v in loaded if v.name == name), None) or load_variant(name)


def _plans(
    items: list[Comparison], variant: Variant, view: PromptView, seed: int
) -> dict[str, list[PlannedRequest]]:
    """The planned requests of every item, by item id, as the labeler planned them."""
    out: dict[str, list[PlannedRequest]] = {}
    for planned in view.plan(items, variant, seed):
        out.setdefault(planned.item_id, []).append(planned)
    return out


def _keys(planned: PlannedRequest, identity: str | None) -> list[str]:
    from labelbench.labeling.cache import request_key

    if identity is None:
        return []
    request = planned.request
    samples = request.n if isinstance(request, RationaleRequest) else 1
    return [request_key(identity, request, sample) for sample in range(samples)]


def collect(
    run_dir: Path,
    data_dir: Path | None,
    *,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """The item view's data for the run in ``run_dir``: cells, items (texts read from the data
    folder), one row per results row with its prompts in each order, and the string table.
    Raises InputError (one line naming the folder or file) when the run has no results or no
    config, or a data file is missing."""
    from labelbench.benchmark import prepare
    from labelbench.config import resolve_data_dir
    from labelbench.labeling.cache import default_cache_dir, read_only_lookup

    run_dir = Path(run_dir)
    results = read_results(run_dir)
    config = read_config(run_dir)
    if config is None:
        raise InputError(
            run_dir / CONFIG,
            "no such file: the item view reads the run's config to find its data files and "
            "labelers (written by `labelbench run`)",
        )
    prepared = {d.spec.name: d for d in prepare(config, resolve_data_dir(data_dir, config))}
    views: dict[str, PromptView | None] = {}
    for labeler in results["labeler"].unique():
        spec = _spec_of(config, str(labeler))
        views[str(labeler)] = prompt_view(spec) if spec is not None else None

    cells: list[dict[str, Any]] = []
    plans: dict[int, dict[str, list[PlannedRequest]]] = {}
    keyed = results[["dataset", "labeler", "variant"]].drop_duplicates()
    for dataset, labeler, variant in keyed.itertuples(index=False):
        view, data = views[labeler], prepared.get(dataset)
        note = None
        if view is None:
            note = f"{labeler} is not among the labelers of {CONFIG}: no prompts shown"
        elif data is None:
            note = f"{dataset} is not among the data sets of {CONFIG}: no texts shown"
        else:
            note = view.note
        cells.append(
            {
                "dataset": dataset,
                "labeler": labeler,
                "variant": variant,
                "chat": bool(view and view.chat),
                "note": note,
            }
        )
        if view is not None and data is not None:
            chosen = _variant(variant, data.variants)
            plans[len(cells) - 1] = _plans(data.items, chosen, view, config.seed)

    cell_of = {(c["dataset"], c["labeler"], c["variant"]): i for i, c in enumerate(cells)}
    identities = {i: views[c["labeler"]] for i, c in enumerate(cells)}
    wanted: list[str] = []
    for index, by_item in plans.items():
        identity = getattr(identities[index], "identity", None)
        for planned_list in by_item.values():
            for planned in planned_list:
                wanted += _keys(planned, identity)
    directory = cache_dir or default_cache_dir()
    stored = read_only_lookup(directory, wanted) if use_cache else {}

    strings = _Strings()
    texts = {name: {item.id: item for item in data.items} for name, data in prepared.items()}
    baselines = baseline_columns(results)
    items: list[dict[str, Any]] = []
    item_of: dict[int, int] = {}
    prompts_of: dict[int, list[dict[str, Any]]] = {}
    verified = total_prompts = 0
    # strings are added item by item (all cells of an item together): repeats sit close
    # together, where gzip finds them
    for (dataset, item_id), group in results.groupby(["dataset", "item_id"], sort=False):
        first = group.iloc[0]
        comparison = texts.get(str(dataset), {}).get(str(item_id))
        items.append(
            {
                "dataset": dataset,
                "id": item_id,
                "group": first["group_id"],
                "context": strings.add(comparison.context if comparison else None),
                "a": strings.add(comparison.response_a if comparison else None),
                "b": strings.add(comparison.response_b if comparison else None),
                "human": _number(first["human_pref_a"]),
                "annotators": [_number(v) for v in first["annotator_prefs"]],
                "confidence": _number(first["confidence"]),
                "len_a": _number(first["len_a"]),
                "len_b": _number(first["len_b"]),
                "judges": {
                    column.removeprefix("baseline_").removesuffix("_pref_a"): _number(first[column])
                    for column in baselines
                    if _number(first[column]) is not None
                },
            }
        )
        for index, result in group.iterrows():
            item_of[int(index)] = len(items) - 1
            cell = cell_of[(result["dataset"], result["labeler"], result["variant"])]
            identity = getattr(identities[cell], "identity", None)
            prompts = prompts_of[int(index)] = []
            for planned in plans.get(cell, {}).get(str(item_id), []):
                request = planned.request
                found = [stored.get(key) for key in _keys(planned, identity)]
                ok = bool(found) and found[0] is not None
                total_prompts += 1
                verified += ok
                prompt: dict[str, Any] = {
                    "order": planned.order,
                    "parts": [
                        strings.add(request.shared),
                        strings.add(request.context),
                        strings.add(request.tail),
                    ],
                    "answers": list(request.answers),
                    "verified": ok,
                }
                if isinstance(request, RationaleRequest):
                    prompt["score_suffix"] = strings.add(request.score_suffix)
                    prompt["sampling"] = (
                        f"n={request.n}, temperature={request.temperature}, "
                        f"top_k={request.top_k}, max_new_tokens={request.max_new_tokens}"
                    )
                    prompt["rationales"] = [
                        strings.add(value.get("rationale")) if value else None for value in found
                    ]
                prompts.append(prompt)
    rows = []
    for index, result in results.iterrows():  # in the results' order, as the report sorts them
        p_ab, p_ba = _number(result["ai_pref_a_ab"]), _number(result["ai_pref_a_ba"])
        lo_ab, lo_ba = (
            _number(result.get("ai_logodds_a_ab")),
            _number(result.get("ai_logodds_a_ba")),
        )
        tokens = result[["prompt_tokens", "gen_tokens"]]
        rows.append(
            {
                "cell": cell_of[(result["dataset"], result["labeler"], result["variant"])],
                "item": item_of[int(index)],
                "p": _number(result["ai_pref_a"]),
                "p_ab": p_ab,
                "p_ba": p_ba,
                "lo_ab": lo_ab if lo_ab is not None else _logit(p_ab),
                "lo_ba": lo_ba if lo_ba is not None else _logit(p_ba),
                "lo_exact": lo_ab is not None or lo_ba is not None,
                "seconds": _number(result["seconds"]),
                "tokens": _number(np.nansum(tokens)) if tokens.notna().any() else None,
                "prompts": prompts_of[int(index)],
            }
        )
    missing = sum(item["context"] is None for item in items)
    return {
        "run": run_dir.resolve().name,
        "seed": config.seed,
        "length_gap": config.analysis.length_gap,
        "confident": CONFIDENT,
        "cache": str(directory) if use_cache else None,
        "verified": verified,
        "prompts": total_prompts,
        "missing_texts": missing,
        "datasets": [d.name for d in config.datasets if d.name in set(results["dataset"])],
        "cells": cells,
        "items": items,
        "rows": rows,
        "strings": strings.values,
    }
