"""``labelbench cache import RUN_DIR``: a finished run's labels into the label cache.

A committed run (``reports/ladder/``) keeps its labels in ``results.parquet`` as P(A) per order,
not in anyone's cache. A new run that shares cells with it (the same data set cut, labeler and
variant) would label them all again. This module re-plans the old run's requests exactly as
``labelbench run`` plans them (its ``config.yaml``, the data files, each labeler's tokenizer and
chat mode) and stores one cache entry per scored order, keyed as the runner keys it.

What is stored: for a score request, the answer log-probabilities ``[log p, log(1 - p)]`` of
the order's P(answer 1) ``p``. Their softmax is ``p`` and their difference is the order's
log-odds, so every figure computed from the cache (P(A), log-odds, soft labels) is the one
computed from the original log-probabilities; their absolute level is not kept (nothing reads
it). The pair's prompt tokens and compute seconds are split between its two orders, so a run
that reads them states the original compute time. Each entry names its source
(``imported_from``).

What is not: chain-of-thought and self-consistency cells (their rationales are not in the
results table) and unscored orders. They are computed by the next run. Nor does an entry
replace one already in the cache (a label computed here, or imported before): it is kept.

Checked before anything is stored: for each labeler, ``check`` scored items of each imported
cell are labelled again on this machine, and the labeler's entries are stored only when every
recomputed P(A) is within ``tolerance`` of the imported one (bfloat16 kernels differ between
CPUs by about 0.01), and refused when no order could be compared. A labeler whose every entry
the cache already holds is neither checked nor stored again, so a rerun after Ctrl-C goes on
from the first labeler it had not stored. A labeler whose identity
cannot be derived here (its tokenizer does not load) is skipped. A run with nothing to import
(no scored order, or results whose labelers or items the config does not plan) says so on its
lines and exits with code 2 (``print_report``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelbench.config import load_config, resolve_data_dir
from labelbench.errors import InputError
from labelbench.requests import PlannedRequest, ScoreRequest
from labelbench.rundir import CONFIG, read_results, result_path

CLIP = 1e-13
"""P(answer 1) is clipped to [CLIP, 1 - CLIP] before its log is taken (log-odds within +-30, the
runner's own clip)."""


@dataclass
class ImportReport:
    """What ``import_labels`` did, per labeler: entries stored, cells skipped and why, and the
    largest |P(A) difference| of the recomputed check items."""

    stored: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    checked: dict[str, tuple[int, float]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for labeler, count in self.stored.items():
            items, worst = self.checked.get(labeler, (0, math.nan))
            kept = self.present.get(labeler, 0)
            if items:
                check = f"; {items} orders recomputed here, max |dP(A)| {worst:.4f}"
            elif count == 0 and kept:
                check = "; nothing new to store, so not checked again"
            else:
                check = "; not checked (--check 0)"
            already = f" ({kept} already in the cache, kept as they were)" if kept else ""
            out.append(f"{labeler}: {count} labels imported{already}{check}")
        out += [f"{labeler}: not imported: {why}" for labeler, why in self.refused.items()]
        out += [f"skipped: {why}" for why in self.skipped]
        if not self.stored and not self.refused:
            out.append("nothing imported: the run has no importable scored labels")
        return out


def _order_p(row: Any, order: str) -> float | None:
    value = row.ai_pref_a_ab if order == "AB" else row.ai_pref_a_ba
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _entry(planned: PlannedRequest, row: Any, source: str) -> dict[str, Any] | None:
    """The cache value of one scored order of one results row (None: unscored)."""
    p_a = _order_p(row, planned.order)
    if p_a is None:
        return None
    first = p_a if planned.order == "AB" else 1.0 - p_a  # P(answer 1) as shown
    first = min(max(first, CLIP), 1.0 - CLIP)
    tokens = int(row.prompt_tokens) if math.isfinite(float(row.prompt_tokens)) else 0
    half = tokens // 2
    return {
        "logprobs": [math.log(first), math.log1p(-first)],
        "rationale": None,
        "prompt_tokens": half if planned.order == "BA" else tokens - half,
        "generated_tokens": 0,
        "seconds": float(row.seconds) / 2 if math.isfinite(float(row.seconds)) else 0.0,
        "verdicts": None,
        "replies": [],
        "requests": 0,
        "imported_from": source,
    }


def import_labels(
    run_dir: Path,
    data_dir: Path | None = None,
    *,
    cache_dir: Path | None = None,
    check: int = 2,
    tolerance: float = 0.03,
) -> ImportReport:
    """Store the scored labels of the run in ``run_dir`` in the label cache (module docstring).

    ``check``: items per cell labelled again here before a labeler's labels are stored (0: no
    check); ``tolerance``: the largest |P(A) difference| accepted, in probability. Raises
    InputError (one line naming the file) when the run has no config or results, or a data file
    is missing."""
    from labelbench.benchmark import prepare
    from labelbench.labeling import LabelCache, default_cache_dir
    from labelbench.labeling.cache import request_key
    from labelbench.labeling.labeler import prompt_view

    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG
    if not config_path.is_file():
        raise InputError(config_path, "no such file: the run's config is needed to re-plan it")
    config = load_config(config_path)
    results = read_results(run_dir)
    prepared = {d.spec.name: d for d in prepare(config, resolve_data_dir(data_dir, config))}
    source = str(result_path(run_dir))
    report = ImportReport()
    cache = LabelCache(cache_dir or default_cache_dir())
    known = {spec.display for spec in config.labelers}
    for name in sorted(set(results["labeler"]) - known):
        report.skipped.append(f"{name}: in {source} but not among the labelers of {CONFIG}")
    try:
        for spec in config.labelers:
            rows = results[results["labeler"] == spec.display]
            if rows.empty:
                continue
            view = prompt_view(spec)
            if view.identity is None:
                report.refused[spec.display] = view.note or "its identity cannot be derived here"
                continue
            entries: dict[str, dict[str, Any]] = {}
            cells: list[tuple[Any, Any, dict[str, Any]]] = []
            for (dataset, variant_name), cell in rows.groupby(["dataset", "variant"], sort=False):
                data = prepared.get(str(dataset))
                variant = (
                    next((v for v in data.variants if v.name == variant_name), None)
                    if data
                    else None
                )
                if data is None or variant is None:
                    report.skipped.append(
                        f"{spec.display} / {dataset} / {variant_name}: not in {CONFIG}"
                    )
                    continue
                if variant.spec.cot or variant.spec.self_consistency:
                    report.skipped.append(
                        f"{spec.display} / {dataset} / {variant_name}: a chain-of-thought cell "
                        "(its rationales are not in the results table)"
                    )
                    continue
                planned = view.plan(data.items, variant, config.seed)
                by_id = {row.item_id: row for row in cell.itertuples(index=False)}
                where = f"{spec.display} / {dataset} / {variant_name}"
                unplanned = len(set(by_id) - {request.item_id for request in planned})
                if unplanned:
                    report.skipped.append(
                        f"{where}: {unplanned} of its {len(by_id)} items are not among the items "
                        f"{CONFIG} plans from the data files (another data file or sample?)"
                    )
                before = len(entries)
                for request in planned:
                    row = by_id.get(request.item_id)
                    if row is None or not isinstance(request.request, ScoreRequest):
                        continue
                    value = _entry(request, row, source)
                    if value is not None:
                        entries[request_key(view.identity, request.request)] = value
                if len(entries) == before and unplanned < len(by_id):
                    report.skipped.append(
                        f"{where}: no scored order (ai_pref_a_ab and ai_pref_a_ba are NaN or "
                        "absent)"
                    )
                cells.append((data, variant, by_id))
            if not entries:
                continue
            present = cache.get_many(list(entries))
            if len(present) == len(entries):  # stored before (a rerun after Ctrl-C resumes here)
                report.present[spec.display] = len(present)
                report.stored[spec.display] = 0
                continue
            if check > 0:
                print(
                    f"checking {spec.display}: labelling {check} "
                    f"item{'' if check == 1 else 's'} a cell again here "
                    f"({len(cells)} cell{'' if len(cells) == 1 else 's'})",
                    file=sys.stderr,
                    flush=True,
                )
                worst, count = _check(spec, cells, check, config.seed, view.identity)
                report.checked[spec.display] = (count, worst)
                if count == 0:
                    report.refused[spec.display] = (
                        "no order recomputed here could be compared with an imported one (each "
                        "checked item was unscored here); --check 0 imports without the check"
                    )
                    continue
                if worst > tolerance:
                    report.refused[spec.display] = (
                        f"recomputed here, P(A) differs by up to {worst:.4f} from {source} "
                        f"(tolerance {tolerance}): another model, prompt or precision"
                    )
                    continue
            cache.put_many(entries, replace=False)  # labels computed here are kept
            report.stored[spec.display] = len(entries) - len(present)
            if present:
                report.present[spec.display] = len(present)
    finally:
        cache.close()
    return report


def _check(
    spec: Any,
    cells: list[tuple[Any, Any, dict[str, Any]]],
    count: int,
    seed: int,
    identity: str,
) -> tuple[float, int]:
    """Label ``count`` items of each cell again (no cache) and return the largest |P(A)
    difference| over their orders, and how many orders were compared. Raises ModelError when
    the labeler's identity as loaded differs from the one the keys were made with."""
    from labelbench.errors import ModelError
    from labelbench.labeling import preferences
    from labelbench.labeling.labeler import open_labeler

    worst, compared = 0.0, 0
    if spec.compile is None:  # a few items: not worth compiling the layers
        spec = spec.model_copy(update={"compile": False})
    labeler = open_labeler(spec)
    try:
        if labeler.identity != identity:
            raise ModelError(
                f"{spec.display}: its identity as loaded ({labeler.identity}) is not the one "
                f"derived without loading it ({identity}); nothing imported"
            )
        for data, variant, by_id in cells:
            items = [  # items with an imported order to compare (unscored ones would not count)
                item
                for item in data.items
                if item.id in by_id
                and any(_order_p(by_id[item.id], order) is not None for order in ("AB", "BA"))
            ][:count]
            if not items:
                continue
            result = labeler.label(items, variant, cache=None, seed=seed)
            for pref in preferences(result.rows):
                row = by_id[pref.item_id]
                for order, value in (("AB", pref.p_a_ab), ("BA", pref.p_a_ba)):
                    old = _order_p(row, order)
                    if old is None or value is None:
                        continue
                    worst = max(worst, abs(old - value))
                    compared += 1
    finally:
        labeler.close()
    return worst, compared


def print_report(report: ImportReport) -> int:
    """Print the report's lines on stderr; the exit code: 2 when a labeler was refused or
    nothing could be imported."""
    for line in report.lines():
        print(line, file=sys.stderr)
    return 2 if report.refused or not report.stored else 0
