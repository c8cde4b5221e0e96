"""Every figure of a run: per data set x labeler x variant metrics, baselines, the winner.

``summary.json`` is a pure function of the results table and the config: rows are sorted, the
bootstrap is seeded from the run seed and the cell's names, and no timing or clock value enters
it. Wall-clock figures (seconds, pairs per second) go to ``timing.json``, which is expected to
differ between two runs of the same config.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelbench import metrics
from labelbench.config import CostBudget, RunConfig
from labelbench.metrics import ClusterBootstrap, Estimate
from labelbench.report.aggregations import dataset_aggregations
from labelbench.rundir import (
    SUMMARY_SCHEMA,
    AggregationRow,
    AggregationTiming,
    BestOf,
    Cell,
    CellTiming,
    DatasetSummary,
    LabelerInfo,
    Summary,
    SummarySettings,
    Timing,
    WinnerFile,
    baseline_columns,
)

SCHEMA = SUMMARY_SCHEMA
BASELINE = "baseline"
CEILING = "human ceiling"
CEILING_MIN_PAIRS = 30
"""A labeler is compared with the human ceiling only on at least this many multiply-annotated
pairs (the plots draw the ceiling from the same number on)."""
RULE_BASELINES = ("always-first", "always-longer", "random")
VERSUS = ("always-longer", "always-first")  # rule baselines every labeler cell is paired with
PROPERTIES = ("n_exemplars", "cot", "sc_n", "temperature", "labeler_params", "label_kind")
BASELINE_UNSET = (
    "ai_pref_a_ab",
    "ai_pref_a_ba",
    "ai_logodds_a_ab",
    "ai_logodds_a_ba",
    "prompt_tokens",
    "gen_tokens",
    "seconds",
    "requests",
    "empty_rationales",
    "rationales",
)
"""A labeler cell's own result columns, unset (NaN) in the baselines' rows."""


@dataclass(frozen=True)
class ReportSettings:
    """What the report needs from the run config."""

    seed: int = 0
    n_boot: int = 1000
    level: float = 0.95
    length_gap: float = 0.1
    calibration_bins: int = 10
    winner_aggregation: str = "auto"
    reference_variant: str | None = None
    cost_budget: CostBudget | None = None
    order: dict[str, list[str]] = field(default_factory=dict)
    labeler_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    labeler_parameters: dict[str, int] = field(default_factory=dict)  # stated in the config

    @classmethod
    def from_config(cls, config: RunConfig) -> ReportSettings:
        analysis = config.analysis
        return cls(
            seed=config.seed,
            n_boot=analysis.bootstrap,
            level=analysis.level,
            length_gap=analysis.length_gap,
            calibration_bins=analysis.calibration_bins,
            winner_aggregation=analysis.winner_aggregation,
            reference_variant=config.reference,
            cost_budget=config.cost_budget,
            order={
                "dataset": [d.name for d in config.datasets],
                "labeler": [spec.display for spec in config.labelers],
                "variant": list(config.variants),
            },
            labeler_specs={
                spec.display: spec.model_dump(mode="json", exclude_none=True)
                for spec in config.labelers
            },
            labeler_parameters={
                spec.display: spec.parameters
                for spec in config.labelers
                if spec.parameters is not None
            },
        )


def _ordered(values: pd.Series, preferred: list[str]) -> list[str]:
    present = sorted(set(values))
    return [v for v in preferred if v in present] + [v for v in present if v not in preferred]


def _dicts(block: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in block.items():
        if isinstance(value, Estimate):
            out[key] = value.to_dict()
        elif isinstance(value, dict):
            out[key] = _dicts(value)
        elif isinstance(value, float):
            rounding = metrics.json_p_value if key == "p_value" else metrics.json_number
            out[key] = rounding(value)
        else:
            out[key] = value
    return out


def _first(rows: pd.DataFrame, column: str) -> Any:
    values = rows[column].dropna()
    if values.empty:
        return None
    value = values.iloc[0]
    if column == "cot":
        return bool(value)
    if isinstance(value, str):
        return value
    return int(value) if float(value).is_integer() else float(value)


def price_per_1k_pairs(rows: pd.DataFrame, spec: dict[str, Any] | None) -> float | None:
    """What 1000 labelled pairs cost at the labeler's stated prices (``price_input``,
    ``price_output``: per million prompt and generated tokens, as hosted APIs bill); None when
    the spec states no price or the rows have no token counts."""
    spec = spec or {}
    price_in, price_out = spec.get("price_input"), spec.get("price_output")
    if (price_in is None and price_out is None) or not len(rows):
        return None
    if rows["prompt_tokens"].isna().all() and rows["gen_tokens"].isna().all():
        return None
    prompt = float(rows["prompt_tokens"].fillna(0).mean())
    generated = float(rows["gen_tokens"].fillna(0).mean())
    per_pair = (prompt * (price_in or 0.0) + generated * (price_out or 0.0)) / 1e6
    return 1000.0 * per_pair


def cell_metrics(rows: pd.DataFrame, settings: ReportSettings, *names: str) -> dict[str, Any]:
    """All metrics of one labeler x variant (or baseline) on one data set; ``names`` are
    (data set, labeler, variant)."""
    boot = ClusterBootstrap(
        rows["group_id"].to_numpy(),
        n_boot=settings.n_boot,
        seed=metrics.seed_from(settings.seed, *names),
        level=settings.level,
    )
    p = rows["ai_pref_a"].to_numpy(float)
    label = metrics.human_label(rows["human_pref_a"].to_numpy(float))
    conf = rows["confidence"].to_numpy(float)
    len_a, len_b = rows["len_a"].to_numpy(float), rows["len_b"].to_numpy(float)
    high = np.isin(conf, metrics.HIGH_CONFIDENCE)
    has_orders = (rows["ai_pref_a_ab"].notna() & rows["ai_pref_a_ba"].notna()).any()
    tokens = rows["prompt_tokens"].fillna(0) + rows["gen_tokens"].fillna(0)
    has_tokens = rows["prompt_tokens"].notna().any() or rows["gen_tokens"].notna().any()
    block: dict[str, Any] = {
        "n": len(rows),
        "human_ties": int(np.isclose(rows["human_pref_a"].to_numpy(float), 0.5).sum()),
        "alignment": metrics.alignment(boot, p, label),
        "tie_agreement": metrics.tie_agreement(boot, p, rows["human_pref_a"].to_numpy(float)),
        "high_confidence": metrics.alignment(boot, p, label, high) if high.any() else None,
        "by_confidence": metrics.by_confidence(
            boot, p, label, conf, [metrics.agreement_bucket(v) for v in rows["annotator_prefs"]]
        ),
        "position_bias": (
            metrics.position_bias(
                boot, rows["ai_pref_a_ab"].to_numpy(float), rows["ai_pref_a_ba"].to_numpy(float)
            )
            if has_orders
            else None
        ),
        "length_bias": metrics.length_bias(boot, p, label, len_a, len_b, settings.length_gap),
        "length_controlled": metrics.length_controlled(
            boot, p, label, len_a, len_b, settings.length_gap
        ),
        "calibration": metrics.calibration(boot, p, label, settings.calibration_bins),
        "cost": {
            "unscored_rate": metrics.mean_estimate(
                boot, np.isnan(p).astype(float), np.ones(len(p), bool)
            ),
            "prompt_tokens": int(rows["prompt_tokens"].fillna(0).sum()) if has_tokens else None,
            "gen_tokens": int(rows["gen_tokens"].fillna(0).sum()) if has_tokens else None,
            "tokens_per_pair": float(tokens.mean()) if has_tokens else None,
            "unscored": int(np.isnan(p).sum()),
            "unparsed": int(rows["unparsed"].fillna(0).sum()) if "unparsed" in rows else 0,
            "empty_rationales": _recorded_sum(rows, "empty_rationales"),
            "rationales": _recorded_sum(rows, "rationales"),
            "requests_per_pair": (
                float(rows["requests"].mean())
                if "requests" in rows and rows["requests"].notna().any()
                else None
            ),
            "price_per_1k_pairs": price_per_1k_pairs(
                rows, settings.labeler_specs.get(names[1]) if len(names) > 1 else None
            ),
        },
        "properties": {column: _first(rows, column) for column in PROPERTIES},
    }
    return _dicts(block)


def _recorded_sum(rows: pd.DataFrame, column: str) -> int | None:
    """The column's sum over the rows, None where no row records it (NaN throughout, or a
    table from before the column)."""
    if column not in rows or rows[column].isna().all():
        return None
    return int(rows[column].fillna(0).sum())


def baseline_rows(items: pd.DataFrame, seed: int) -> dict[str, pd.DataFrame]:
    """Rule-based and published labels for the data set's items, as result rows."""
    longer = np.sign(items["len_a"].to_numpy(float) - items["len_b"].to_numpy(float))
    coin = [metrics.seed_from(seed, "random", item) % 2 for item in items["item_id"]]
    labels = {
        RULE_BASELINES[0]: np.ones(len(items)),
        RULE_BASELINES[1]: (longer + 1) / 2,
        RULE_BASELINES[2]: np.asarray(coin, float),
    }
    for column in baseline_columns(items):
        if items[column].notna().any():
            labels[column.removeprefix("baseline_").removesuffix("_pref_a")] = items[column]
    out = {}
    for name, values in labels.items():
        rows = items.copy()
        rows["ai_pref_a"] = np.asarray(values, float)
        for column in BASELINE_UNSET:  # the rows are copies of a labeler's: unset its columns
            if column in rows:
                rows[column] = np.nan
        for column in PROPERTIES:
            if column in rows:
                rows[column] = None
        if "unparsed" in rows:
            rows["unparsed"] = 0
        out[name] = rows
    return out


def _timing(rows: pd.DataFrame, labeler: str, variant: str) -> CellTiming:
    seconds = float(rows["seconds"].sum()) if rows["seconds"].notna().any() else None
    return CellTiming(
        labeler=labeler,
        variant=variant,
        seconds=metrics.json_number(seconds) if seconds is not None else None,
        seconds_per_pair=metrics.json_number(seconds / len(rows)) if seconds else None,
        pairs_per_second=metrics.json_number(len(rows) / seconds) if seconds else None,
    )


def _credit(rows: pd.DataFrame) -> pd.Series:
    label = metrics.human_label(rows["human_pref_a"].to_numpy(float))
    return pd.Series(
        metrics.credit(rows["ai_pref_a"].to_numpy(float), label), index=rows["item_id"]
    )


def versus_reference(
    rows: pd.DataFrame, reference: pd.DataFrame, settings: ReportSettings, *names: str
) -> dict[str, Any]:
    """Paired comparison of a variant with the reference variant on their common items."""
    joined = pd.DataFrame({"v": _credit(rows), "r": _credit(reference)}).dropna()
    groups = rows.set_index("item_id").loc[joined.index, "group_id"].to_numpy()
    boot = ClusterBootstrap(
        groups,
        n_boot=settings.n_boot,
        seed=metrics.seed_from(settings.seed, *names),
        level=settings.level,
    )
    result = metrics.paired_difference(boot, joined["v"].to_numpy(), joined["r"].to_numpy())
    return {"reference": names[-1], **_dicts(result)}


def versus_ceiling(
    rows: pd.DataFrame, pairs: pd.DataFrame, settings: ReportSettings, *names: str
) -> dict[str, Any]:
    """Paired comparison of a cell with the human ceiling: on each multiply-annotated pair
    (``metrics.ceiling_scores``) the cell's mean credit minus the annotators' leave-one-out
    agreement, averaged over the pairs both have; the interval resamples groups."""
    credit = pd.DataFrame(
        {"pair_key": rows["pair_key"].to_numpy(), "c": _credit(rows).to_numpy()}
    ).dropna()
    per_pair = credit.groupby("pair_key")["c"].mean()
    joined = pairs.join(per_pair, on="pair_key", how="inner").dropna(subset=["score", "c"])
    if joined.empty:  # no multiply-annotated pair: nothing to compare
        return {
            "reference": CEILING,
            "difference": Estimate(math.nan, math.nan, math.nan, 0).to_dict(),
        }
    if len(joined) < CEILING_MIN_PAIRS:
        reason = f"only {len(joined)} multiply-annotated pairs (fewer than {CEILING_MIN_PAIRS})"
        return {
            "reference": CEILING,
            "difference": Estimate.undefined(reason, len(joined)).to_dict(),
        }
    boot = ClusterBootstrap(
        joined["group_id"].to_numpy(),
        n_boot=settings.n_boot,
        seed=metrics.seed_from(settings.seed, *names),
        level=settings.level,
    )
    diff = (joined["c"] - joined["score"]).to_numpy(float)
    estimate = metrics.mean_estimate(boot, diff, np.ones(len(diff), bool))
    return {"reference": CEILING, "difference": estimate.to_dict()}


def versus_baselines(
    rows: pd.DataFrame,
    baselines: dict[str, pd.DataFrame],
    ceiling_pairs: pd.DataFrame,
    settings: ReportSettings,
    *names: str,
) -> dict[str, dict[str, Any]]:
    """A labeler cell against always-longer, always-first (paired over the same items) and the
    human ceiling (paired over multiply-annotated pairs): ``{baseline: {"difference": ...}}``,
    the difference being the cell's accuracy minus the baseline's."""
    out = {
        name: versus_reference(rows, baselines[name], settings, *names, "vs", name)
        for name in VERSUS
    }
    out[CEILING] = versus_ceiling(rows, ceiling_pairs, settings, *names, "vs", CEILING)
    return out


def _task(data: pd.DataFrame) -> str | None:
    """The data set's task: the ``task`` column, else the family of its variants' names
    (``summarization/base-0shot`` -> ``summarization``), else None."""
    if "task" in data and data["task"].notna().any():
        tasks = set(data["task"].dropna().astype(str))
    else:
        tasks = {v.split("/", 1)[0] if "/" in v else "" for v in data["variant"]}
    return tasks.pop() if len(tasks) == 1 and "" not in tasks else None


def labeler_sizes(results: pd.DataFrame, settings: ReportSettings) -> dict[str, int | None]:
    """Each labeler's parameter count: the one the run recorded (counted at load, or stated in
    the config for a served model), else the config's ``parameters``, else None (unknown)."""
    sizes: dict[str, int | None] = {}
    for labeler in _ordered(results["labeler"], settings.order.get("labeler", [])):
        counted = results.loc[results["labeler"] == labeler, "labeler_params"].dropna()
        stated = settings.labeler_parameters.get(labeler)
        sizes[labeler] = int(counted.iloc[0]) if not counted.empty else stated
    return sizes


def count_cells(results: pd.DataFrame) -> int:
    """How many tables of metrics ``summarize`` computes (labeler cells and baselines)."""
    cells = results.groupby(["dataset", "labeler", "variant"]).ngroups
    for _, data in results.groupby("dataset"):
        judges = [c for c in baseline_columns(data) if data[c].notna().any()]
        cells += len(RULE_BASELINES) + len(judges) + 1  # + 1: the aggregations
    return cells


def summarize(
    results: pd.DataFrame,
    settings: ReportSettings,
    on_cell: Callable[[str], None] | None = None,
) -> tuple[Summary, Timing]:
    """(summary.json, timing.json) for a normalized results table (``rundir.normalize``);
    ``on_cell`` hears of each cell done. Raises pydantic's ValidationError if a figure does not
    fit the summary's model (a bug here, not a user error)."""
    done = on_cell or (lambda _: None)
    datasets: dict[str, DatasetSummary] = {}
    timing = Timing(cells={}, aggregation_seconds={})
    for dataset in _ordered(results["dataset"], settings.order.get("dataset", [])):
        data = results[results["dataset"] == dataset]
        items = data.drop_duplicates("item_id").reset_index(drop=True)
        ceiling = metrics.human_ceiling(
            items,
            n_boot=settings.n_boot,
            seed=metrics.seed_from(settings.seed, dataset, CEILING),
            level=settings.level,
        )
        label = metrics.human_label(items["human_pref_a"].to_numpy(float))
        baselines = baseline_rows(items, settings.seed)
        ceiling_pairs = metrics.ceiling_scores(items)
        cells: list[Cell] = []
        timing.cells[dataset] = []
        for labeler in _ordered(data["labeler"], settings.order.get("labeler", [])):
            mine = data[data["labeler"] == labeler]
            variants = _ordered(mine["variant"], settings.order.get("variant", []))
            reference = (
                settings.reference_variant
                if settings.reference_variant in variants
                else variants[0]
            )
            for variant in variants:
                rows = mine[mine["variant"] == variant].reset_index(drop=True)
                cell = {"kind": "labeler", "labeler": labeler, "variant": variant}
                cell.update(cell_metrics(rows, settings, dataset, labeler, variant))
                if reference is not None and variant != reference:
                    ref_rows = mine[mine["variant"] == reference]
                    names = (dataset, labeler, variant, "vs", reference)
                    cell["vs_reference"] = versus_reference(rows, ref_rows, settings, *names)
                cell["vs_baselines"] = versus_baselines(
                    rows, baselines, ceiling_pairs, settings, dataset, labeler, variant
                )
                cells.append(Cell.model_validate(cell))
                done(f"{dataset} {labeler} {variant}")
                timing.cells[dataset].append(_timing(rows, labeler, variant))
        for name, rows in baselines.items():
            cell = {"kind": BASELINE, "labeler": BASELINE, "variant": name}
            cell.update(cell_metrics(rows, settings, dataset, BASELINE, name))
            cells.append(Cell.model_validate(cell))
            done(f"{dataset} {BASELINE} {name}")
        labeled = [(c.labeler, c.variant) for c in cells if c.kind == "labeler"]
        aggregations, curve, seconds = dataset_aggregations(
            data, items, baselines, labeled, settings, dataset
        )
        datasets[dataset] = DatasetSummary(
            task=_task(data),
            n_items=len(items),
            human_ties=int(np.isnan(label).sum() - items["human_pref_a"].isna().sum()),
            human_ceiling=ceiling.to_dict() if ceiling else None,
            cells=cells,
            aggregations=[AggregationRow.model_validate(row) for row in aggregations],
            learning_curve=curve,
        )
        timing.aggregation_seconds[dataset] = [
            AggregationTiming.model_validate(row) for row in seconds
        ]
        done(f"{dataset} aggregations")
    summary = Summary(
        version=SCHEMA,
        settings=SummarySettings(
            seed=settings.seed,
            bootstrap=settings.n_boot,
            level=settings.level,
            length_gap=settings.length_gap,
            calibration_bins=settings.calibration_bins,
            reference_variant=settings.reference_variant or "first variant of each labeler",
            bootstrap_unit="group_id",
        ),
        labelers={
            name: LabelerInfo(parameters=size)
            for name, size in labeler_sizes(results, settings).items()
        },
        datasets=datasets,
    )
    return summary, timing


def _cost_of(summary: Summary, timing: Timing, labeler: str, variant: str) -> dict:
    tokens, seconds = [], []
    for dataset, entry in summary.datasets.items():
        cell = entry.cell(labeler, variant)
        if cell is not None:
            tokens.append(cell.cost.tokens_per_pair)
        row = timing.of(dataset, labeler, variant)
        if row is not None:
            seconds.append(row.seconds_per_pair)
    mean = lambda values: (  # noqa: E731
        None if not values or None in values else metrics.json_number(sum(values) / len(values))
    )
    return {"tokens_per_pair": mean(tokens), "seconds_per_pair": mean(seconds)}


def rank_key(
    accuracy: float, tokens_per_pair: float | None, labeler: str, variant: str
) -> tuple[float, float, str, str]:
    """The one order of labeler cells, best first (sort ascending): higher accuracy (a fraction
    in [0, 1]), then fewer prompt+completion tokens per pair (unknown counts last), then labeler
    and variant name. ``choose_winner`` (winner.json) and the report's verdicts
    (``labelbench.report.verdict``) both rank with it, so a tie goes the same way in both."""
    tokens = math.inf if tokens_per_pair is None else tokens_per_pair
    return (-accuracy, tokens, labeler, variant)


def choose_winner(summary: Summary, timing: Timing, settings: ReportSettings) -> WinnerFile:
    """The (labeler, variant) with the best accuracy averaged over the data sets its variant ran
    on, among those within the cost budget (ties: ``rank_key``); and the best of each
    data set. A candidate must have results on every data set where its variant ran. Without a
    candidate, ``labeler`` and ``variant`` are None and ``reason`` says why."""
    accuracy: dict[tuple[str, str], dict[str, float]] = {}
    ran_on: dict[str, set[str]] = {}
    for dataset, entry in summary.datasets.items():
        for cell in entry.labeler_cells():
            ran_on.setdefault(cell.variant, set()).add(dataset)
            if cell.accuracy is not None:
                accuracy.setdefault((cell.labeler, cell.variant), {})[dataset] = cell.accuracy
    budget = settings.cost_budget or CostBudget()
    candidates = []
    for (labeler, variant), per_dataset in accuracy.items():
        if set(per_dataset) != ran_on[variant]:
            continue
        cost = _cost_of(summary, timing, labeler, variant)
        limits = (
            (budget.max_tokens_per_pair, cost["tokens_per_pair"]),
            (budget.max_seconds_per_pair, cost["seconds_per_pair"]),
        )
        if any(limit is not None and (used is None or used > limit) for limit, used in limits):
            continue
        if budget.max_seconds_per_pair is None:  # keep winner.json free of timing unless asked
            cost.pop("seconds_per_pair")
        score = sum(per_dataset.values()) / len(per_dataset)
        candidates.append((score, labeler, variant, per_dataset, cost))
    candidates.sort(key=lambda c: rank_key(c[0], c[4]["tokens_per_pair"], c[1], c[2]))
    by_dataset = {}
    for dataset in summary.datasets:
        best = next((c for c in candidates if dataset in c[3]), None)
        if best is not None:
            by_dataset[dataset] = BestOf(
                labeler=best[1], variant=best[2], alignment=best[3][dataset]
            )
    base: dict[str, Any] = {
        "criterion": "mean accuracy over the data sets the variant ran on",
        "cost_budget": budget.model_dump(exclude_none=True),
        "candidates": len(candidates),
        "by_dataset": by_dataset,
    }
    if not candidates:
        return WinnerFile.model_validate(
            {"labeler": None, "variant": None, **base, "reason": "no labeler x variant qualifies"}
        )
    score, labeler, variant, per_dataset, cost = candidates[0]
    return WinnerFile.model_validate(
        {
            "labeler": labeler,
            "variant": variant,
            "alignment": metrics.json_number(score),
            "per_dataset": per_dataset,
            **cost,
            # the labeler as it ran (a LabelerSpec: backend, url, chat, dtype, ...) and the run
            # seed, so `rlaif label --winner` and `labelbench serve` reopen exactly this labeler
            # None when the run's config.yaml was not there: load_winner then refuses the file
            "labeler_spec": settings.labeler_specs.get(labeler),
            "seed": settings.seed,
            **base,
        }
    )
