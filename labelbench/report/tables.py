"""The report's tables and sentences, as text from the typed summary, timing and winner: one
row per cell, the verdict rows, the aggregation table, and Markdown and HTML cell formatting."""

from __future__ import annotations

import re
from typing import Any

import markupsafe

from labelbench.aggregate import Aggregation
from labelbench.report.summary import CEILING, VERSUS
from labelbench.report.verdict import UNKNOWN, Verdict
from labelbench.rundir import (
    AggregationRow,
    Cell,
    CellTiming,
    Cost,
    DatasetSummary,
    Difference,
    Estimate,
    Paired,
    PositionBias,
    Timing,
    WinnerFile,
)

ALIGNMENT_COLUMNS = (
    "labeler",
    "variant",
    "accuracy",
    "soft agreement",
    "kappa",
    "high-confidence accuracy",
    "length-matched accuracy",
    "length-balanced accuracy",
    "length-corrected accuracy",
    "vs reference",
    "tie agreement",
)
BIAS_COLUMNS = (
    "labeler",
    "variant",
    "prefers longer",
    "same slot both orders",
    "ECE",
    "unscored",
    "labels",
    "unparsed",
    "empty rationales",
    "tokens/pair",
    "requests/pair",
    "price/1k pairs",
    "s/pair",
    "pairs/s",
)
VERDICT_COLUMNS = (
    "data set",
    "best labeler / variant",
    "accuracy",
    *(f"vs {name}" for name in VERSUS),
    f"vs {CEILING}",
)


def fmt(estimate: Estimate | None, digits: int = 3) -> str:
    """``value [low, high]``; "n/a (reason)" for an undefined value or interval; "–" for None."""
    if estimate is None:
        return "–"
    reason = estimate.reason
    if estimate.value is None:
        return f"n/a ({reason})" if reason else "–"
    text = f"{estimate.value:.{digits}f}"
    if estimate.low is not None and estimate.high is not None:
        text += f" [{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"
    elif reason:
        text += f" ({reason})"
    return text


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _slot(block: PositionBias | None) -> str:
    if block is None:
        return "–"
    p_value = block.p_value
    test = f", {block.slot}, p={p_value:.3g}" if p_value is not None else ""
    return fmt(block.same_slot) + test


def _versus(block: Paired | None) -> str:
    if block is None:
        return "–"
    value = block.difference.value
    if block.p_value is not None:
        return f"{value:+.3f} (p={block.p_value:.3g})"
    return f"{value:+.3f}" if value is not None else "–"


AGGREGATION_COLUMNS = (
    "method",
    "labeler / variant",
    "needs (labels per fit)",
    "accuracy",
    "vs always-longer",
    "vs always-first",
    "log-loss",
    "ECE",
    "mean conf.",
    "coverage at 0.8",
    "labeler weight",
)


def _diff(block: Difference | None) -> str:
    if block is None or block.diff is None:
        return "–"
    if block.low is None or block.high is None:
        return f"{block.diff:+.3f}"
    return f"{block.diff:+.3f} [{block.low:+.3f}, {block.high:+.3f}]"


def _members(row: AggregationRow) -> str:
    if not row.labelers:
        return "no labeler (length alone)"
    if len(row.labelers) == 1:
        return f"{row.labelers[0]} / {row.variants[0]}"
    return f"{len(row.labelers)} cells ({', '.join(dict.fromkeys(row.labelers))})"


def aggregation_rows(entry: DatasetSummary) -> list[list[str]]:
    """One row per aggregation x labeler cell (``summary.json`` ``aggregations``)."""
    rows = []
    for row in entry.aggregations:
        needs = row.needs if row.needs == "nothing" else f"human labels ({row.n_fit})"
        coverage = row.coverage_at_0_8
        rows.append(
            [
                row.method,
                _members(row),
                needs,
                fmt(row.accuracy),
                _diff(row.vs_always_longer),
                _diff(row.vs_always_first),
                _number(row.log_loss, 3),
                _number(row.ece, 3),
                _number(row.mean_confidence, 3),
                ("never" if coverage is None else f"{coverage:.2f}")
                if row.accuracy.value is not None
                else "–",
                row.status or "–",
            ]
        )
    return rows


def aggregation_sentences(entry: DatasetSummary) -> list[str]:
    """What the aggregation table says: the best method and what it needed, which labelers are
    anti-informative, and the learning curve."""
    from labelbench.report.aggregations import best_aggregation

    rows = entry.aggregations
    out = []
    best = best_aggregation(rows)
    if best is not None:
        needs = (
            "no human labels"
            if best.needs == "nothing"
            else f"{best.n_fit} human labels per fit ({best.folds}-fold cross-fitted)"
        )
        versus = best.vs_always_longer
        win = versus.low is not None and versus.low > 0
        where = f"on {_members(best)}" if best.labelers else "(no labeler: length alone)"
        text = (
            f"Best aggregation: {best.method} {where}, accuracy "
            f"{fmt(best.accuracy)}, log-loss {_number(best.log_loss, 3)}, needing {needs}; "
            f"against always-longer {_diff(versus)}"
            + ("." if win else ": not a win over always-longer.")
        )
        if best.status == "anti-informative":
            text += " It gets there by reversing an anti-informative labeler's choices."
        elif best.status == "uninformative" and best.method == "stacked":
            text += " The labeler's weight is not distinguishable from 0: this is length alone."
        out.append(text)
    plain = {(tuple(r.labelers), tuple(r.variants)): r for r in rows if r.method == "prob-mean"}
    for row in rows:
        if row.method == "calibrated" and row.status == "anti-informative":
            before = plain.get((tuple(row.labelers), tuple(row.variants)))
            out.append(
                f"{_members(row)} is anti-informative: its fitted weight is below 0 (it prefers "
                "the response humans did not), so calibration reverses its choices: accuracy "
                f"{fmt(before.accuracy, 2) if before else '–'} as labelled, "
                f"{fmt(row.accuracy, 2)} reversed."
            )
    curve = entry.learning_curve
    if curve:
        parts = [
            f"{p.method} {p.n_labels}: {p.accuracy:.3f} / {p.log_loss:.3f}" for p in curve.points
        ]
        out.append(
            f"Learning curve ({curve.labeler} / {curve.variant}; accuracy / log-loss on "
            f"held-out groups by labels fitted on): {'; '.join(parts)}."
        )
    return out


def aggregation_warning(agg: Aggregation) -> str:
    """Why a deployed aggregation's labels are not the labeler's judgement (status)."""
    return agg.caveat() or ""


def winner_aggregation_text(winner: WinnerFile) -> str:
    """The winner's soft-label aggregation as ``rlaif label`` and ``serve`` apply it."""
    agg = winner.aggregation
    if agg is None:
        return ""
    text = f"Its soft labels for training and serving: **{agg.method}**"
    if agg.weight is not None:
        text += f" (weight {agg.weight:.3f} on the order-averaged log-odds"
        if agg.length_weight is not None:
            text += f", {agg.length_weight:.3f} on the log length ratio"
        text += f"; {agg.status}; fitted on {agg.n_fit} human labels of "
        text += f"{', '.join(agg.fitted_on)})"
    choice = winner.aggregation_choice
    methods = choice.methods if choice is not None else {}
    losses = [f"{m} {c.log_loss:.3f}" for m, c in methods.items() if c.log_loss is not None]
    if choice is not None and choice.criterion:
        text += f"; chosen by {choice.criterion}"
    if losses:
        text += f" (cross-fitted log-loss: {'; '.join(losses)})"
    text += "."
    if agg.status in ("uninformative", "anti-informative"):
        text += f" Warning: {aggregation_warning(agg)}."
    return text


def alignment_rows(entry: DatasetSummary) -> list[list[str]]:
    """Alignment of one data set: labelers, then baselines, then the human ceiling."""
    rows = []
    for cell in entry.cells:
        high = cell.high_confidence
        lc = cell.length_controlled
        rows.append(
            [
                cell.labeler,
                cell.variant,
                fmt(cell.alignment.accuracy),
                fmt(cell.alignment.soft_agreement),
                fmt(cell.alignment.kappa),
                fmt(high.accuracy if high is not None else None),
                fmt(lc.matched),
                fmt(lc.balanced),
                fmt(lc.corrected),
                _versus(cell.vs_reference),
                fmt(cell.tie_agreement),
            ]
        )
    rows.append(["human ceiling", "leave-one-out", ceiling_text(entry.human_ceiling)])
    rows[-1] += ["–"] * (len(ALIGNMENT_COLUMNS) - 3)
    return rows


def _empty(cost: Cost) -> str:
    """Empty rationales of a cell over the rationales decoded ("3/400"), "–" where not recorded."""
    if cost.empty_rationales is None:
        return "–"
    if cost.rationales is None:
        return str(cost.empty_rationales)
    return f"{cost.empty_rationales}/{cost.rationales}"


def bias_rows(entry: DatasetSummary, timing: list[CellTiming]) -> list[list[str]]:
    """Biases, calibration and cost of one data set (``timing``: its cells' timing.json rows)."""
    times = {(t.labeler, t.variant): t for t in timing}
    rows = []
    for cell in entry.cells:
        t = times.get((cell.labeler, cell.variant))
        rows.append(
            [
                cell.labeler,
                cell.variant,
                fmt(cell.length_bias.ai_prefers_longer),
                _slot(cell.position_bias),
                fmt(cell.calibration.ece),
                _unscored(cell.cost),
                _label_kind(cell),
                _count(cell.cost.unparsed),
                _empty(cell.cost),
                _number(cell.cost.tokens_per_pair),
                _number(cell.cost.requests_per_pair, 2),
                _number(cell.cost.price_per_1k_pairs, 4),
                _number(t.seconds_per_pair if t is not None else None, 3),
                _number(t.pairs_per_second if t is not None else None, 2),
            ]
        )
    return rows


def _unscored(cost: Cost) -> str:
    """The unscored rate, with the count of unscored pairs when there are any."""
    rate = fmt(cost.unscored_rate)
    return f"{rate} ({cost.unscored})" if cost.unscored else rate


def _label_kind(cell: Cell) -> str:
    """What a labeler cell's labels are read from, shown only for verdict judges (log-probability
    labels are the default; a column of dashes is left out)."""
    kind = cell.properties.label_kind
    return kind if isinstance(kind, str) and kind.startswith("verdict") else "–"


def _count(value: Any) -> str:
    return str(int(value)) if isinstance(value, int | float) and value else "–"


def confidence_rows(entry: DatasetSummary) -> tuple[list[str], list[list[str]]]:
    buckets = list(dict.fromkeys(b for c in entry.cells for b in c.by_confidence))
    rows = [
        [c.labeler, c.variant] + [fmt(c.by_confidence.get(b)) for b in buckets]
        for c in entry.cells
        if c.by_confidence
    ]
    names = [b if b in ("unanimous", "split") else f"confidence {b}" for b in buckets]
    return ["labeler", "variant", *names], rows


def ceiling_text(ceiling: Estimate | None) -> str:
    """The human ceiling with its n (pairs with several annotators); ``n/a (n=0)`` without."""
    if ceiling is None or ceiling.value is None:
        return f"n/a (n={ceiling.n if ceiling is not None else 0})"
    return f"{fmt(ceiling)} (n={ceiling.n})"


def verdict_rows(found: list[Verdict]) -> list[list[str]]:
    """The main table: per data set its best cell and the paired differences to the baselines
    (the baseline's score in the header cell's text, the human ceiling always with its n)."""
    rows = []
    for verdict in found:
        if verdict.labeler is None:
            rows.append([verdict.dataset, "–", "–"] + ["–"] * (len(VERDICT_COLUMNS) - 3))
            continue
        row = [verdict.dataset, verdict.cell(), fmt(verdict.accuracy)]
        for versus in verdict.versus:
            if versus.difference is None:
                row.append(f"{UNKNOWN} ({versus.baseline_text()})")
                continue
            outcome = verdict.outcome_text(versus)
            row.append(f"{versus.interval()}, {outcome} ({versus.baseline_text()})")
        rows.append(row)
    return rows


def winner_against_baselines(winner: WinnerFile) -> str:
    """One sentence: whether the winner beats each baseline on every data set it ran on."""
    beats = winner.beats or {}
    if not beats:
        return ""
    words = {True: "yes", False: "no", None: "n/a"}
    sentence = (
        "Beats, on every data set it ran on: "
        + "; ".join(f"{name}: {words[value]}" for name, value in beats.items())
        + "."
    )
    lost = [name for name, value in beats.items() if value is False and name != "human ceiling"]
    if lost:
        sentence += (
            f" It does not beat {' or '.join(lost)}: the best cell of this run, not a labeler "
            "to train with."
        )
    for dataset, flags in (winner.flags or {}).items():
        sentence += f" Flagged on {dataset}: {'; '.join(flags)}."
    return sentence


def _family(entry: DatasetSummary) -> str:
    """``summarization/`` when every labeler cell's variant has that family, else ``""``."""
    names = {c.variant for c in entry.labeler_cells()}
    families = {n.split("/", 1)[0] + "/" if "/" in n else "" for n in names}
    return families.pop() if len(families) == 1 else ""


def _short(rows: list[list[str]], family: str) -> list[list[str]]:
    """Rows with the variant column's shared family prefix dropped (stated above the table)."""
    if not family:
        return rows
    return [[r[0], r[1].removeprefix(family), *r[2:]] for r in rows]


SPLIT = re.compile(r"^(\S+?)[ ,:] ?(\[.*|\(.*)$")


def two_lines(text: str) -> markupsafe.Markup:
    """HTML for a table cell: a figure on top, its interval (or detail) small below, so that
    wide tables fit a 1200 px page."""
    found = SPLIT.match(text)
    if not found:
        return markupsafe.escape(text)
    head, tail = found.groups()
    if tail.startswith("(") and len(tail) > 20:  # a note, not an interval: it may wrap
        return markupsafe.Markup('{}<br><small class="note">{}</small>').format(head, tail)
    return markupsafe.Markup("{}<br><small>{}</small>").format(head, tail)


def human_length_preference(entry: DatasetSummary) -> str:
    cells = entry.cells
    return fmt(cells[0].length_bias.human_prefers_longer) if cells else "–"


def parameter_text(count: int | None) -> str:
    """``135M``, ``1.54B`` parameters, or ``parameters unknown``."""
    if count is None:
        return "parameters unknown"
    if count >= 1e9:
        return f"{count / 1e9:.2f}B parameters"
    return f"{count / 1e6:.0f}M parameters"


def _budget(limits: dict[str, float]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} <= {value:g}" for key, value in limits.items())


def _markdown_cell(text: str) -> str:
    """A '|' in a name (a labeler's label, a data set) would end its cell: escaped; a line
    break would end the row: a space."""
    return " ".join(str(text).replace("|", "\\|").split("\n"))


def _markdown_table(
    header: list[str] | tuple[str, ...], rows: list[list[str]], best: int | None = None
) -> str:
    """A Markdown table; row ``best`` (the table's best cell) in bold."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in enumerate(rows):
        cells = [_markdown_cell(cell) for cell in row]
        if index == best:
            cells = [f"**{cell}**" if cell.strip() not in ("", "–") else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_row(rows: list[list[str]], labeler: str | None, variant: str | None) -> int | None:
    """The index of the row of ``labeler`` / ``variant`` (its variant maybe shortened by the
    table's family prefix), None when the table has none."""
    if labeler is None or variant is None:
        return None
    for index, row in enumerate(rows):
        if row[0] == labeler and variant.endswith(row[1]) and row[1]:
            return index
    return None


def highest_row(rows: list[list[str]], column: int) -> int | None:
    """The index of the row whose ``column`` starts with the highest number; None when no row
    has a number there."""
    best, found = None, None
    for index, row in enumerate(rows):
        head = re.match(r"-?\d+(\.\d+)?", row[column]) if column < len(row) else None
        if head and (found is None or float(head.group()) > found):
            best, found = index, float(head.group())
    return best


def compute_seconds(timing: Timing) -> float | None:
    """The labels' compute time: the seconds recorded when each label was computed (kept by the
    cache, so a run that read every label from it still counts them), summed over the run."""
    seconds = [float(row.seconds) for rows in timing.cells.values() for row in rows if row.seconds]
    return sum(seconds) if seconds else None


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``7.1 h``; ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as
    hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _filled(columns: tuple[str, ...], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The columns (and their cells) that hold a figure in at least one row: a data set without
    references or human ties shows no column of dashes."""
    keep = [i for i in range(len(columns)) if i < 2 or any(row[i] != "–" for row in rows)]
    return [columns[i] for i in keep], [[row[i] for i in keep] for row in rows]
