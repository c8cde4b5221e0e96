"""Markdown and self-contained HTML pages from the summary, the timing and the plots."""

from __future__ import annotations

import base64
import re
from typing import Any

import jinja2
import markupsafe

from labelbench.metrics import TIE_MARGIN
from labelbench.report.plots import PLOT_CAPTIONS, PLOT_TITLES
from labelbench.report.summary import CEILING, VERSUS
from labelbench.report.verdict import (
    SAME_SLOT_LIMIT,
    UNKNOWN,
    Verdict,
    calibration_bins,
    failure_sentences,
    verdicts,
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
NOTES = (
    "Verdicts: the best labeler cell of each data set (highest accuracy; ties: fewer tokens "
    "per pair, then name, as for winner.json) minus each baseline, "
    "paired over the same items (the human ceiling: over the pairs with several annotators), "
    "with {level:.0%} cluster-bootstrap intervals; 'beats it' when the whole interval is above "
    "0, 'below it' when it is below 0, 'n/a' when it cannot be estimated. winner.json records "
    "the same for the winner on every data set it ran on. A 'beats it' is flagged on the same "
    "line when the same slot wins in both orders for more than {same_slot:.0%} of the cell's "
    "pairs, or when the cell prefers the longer response where humans prefer the shorter (or "
    "the reverse).",
    "Why each cell fails: its dominant failure among the figures of the tables: a slot that wins "
    "in both orders for more than {same_slot:.0%} of pairs, at least 90% of P(A) within "
    "0.4-0.6 (the reliability bins), a length preference against the humans', more than 5% "
    "unscored pairs.",
    "Accuracy: the AI's argmax against the human majority; human ties are excluded (counted "
    "separately), an AI tie earns half credit, unscored pairs are excluded and counted in "
    "'unscored'.",
    "Intervals: {level:.0%} percentile intervals of a cluster bootstrap ({bootstrap} resamples of "
    "whole groups, e.g. all comparisons of one post), seeded from the run seed and the names.",
    "Length: a pair is length-matched when its lengths differ by at most {gap:.0%} of the longer "
    "one; 'prefers longer' counts pairs above that gap. Length-balanced accuracy averages the "
    "accuracy on pairs where humans chose the longer and where they chose the shorter response. "
    "Length-corrected accuracy is the agreement a logistic fit on log(length of the "
    "human-preferred / the other) predicts for equal lengths (undefined when length alone "
    "decides, as for always-longer). Each of the three is n/a when its pairs come from one group "
    "only (one post or prompt): one group cannot take length out.",
    "Same slot: share of pairs where the same position wins in both orders, the slot it favours "
    "and a two-sided binomial test of first vs second slot. 'vs reference': accuracy difference "
    "to the reference variant on common items, with McNemar's exact p-value.",
    "Human ceiling: each annotator's agreement with the majority of the other annotators of the "
    "same pair (leave one out), averaged over pairs with several annotators.",
    "Timing figures (s/pair, pairs/s) come from timing.json and are not part of summary.json.",
    "Tie agreement: on the pairs humans tie (excluded from accuracy), the share where the "
    "labeler is unsure too: its P(A) within {tie_margin} of 1/2.",
)


def fmt(estimate: dict[str, Any] | None, digits: int = 3) -> str:
    """``value [low, high]``; "n/a (reason)" for an undefined value or interval."""
    if not estimate:
        return "–"
    reason = estimate.get("reason")
    if estimate.get("value") is None:
        return f"n/a ({reason})" if reason else "–"
    text = f"{estimate['value']:.{digits}f}"
    if estimate.get("low") is not None and estimate.get("high") is not None:
        text += f" [{estimate['low']:.{digits}f}, {estimate['high']:.{digits}f}]"
    elif reason:
        text += f" ({reason})"
    return text


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _slot(block: dict[str, Any] | None) -> str:
    if not block:
        return "–"
    p_value = block["p_value"]
    test = f", {block['slot']}, p={p_value:.3g}" if p_value is not None else ""
    return fmt(block["same_slot"]) + test


def _versus(block: dict[str, Any] | None) -> str:
    if not block:
        return "–"
    p_value = block["p_value"]
    return (
        f"{block['difference']['value']:+.3f} (p={p_value:.3g})"
        if p_value is not None
        else (
            f"{block['difference']['value']:+.3f}"
            if block["difference"]["value"] is not None
            else "–"
        )
    )


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


def _diff(block: dict[str, Any] | None) -> str:
    if not block or block.get("diff") is None:
        return "–"
    if block.get("low") is None:
        return f"{block['diff']:+.3f}"
    return f"{block['diff']:+.3f} [{block['low']:+.3f}, {block['high']:+.3f}]"


def _members(row: dict[str, Any]) -> str:
    if not row["labelers"]:
        return "no labeler (length alone)"
    if len(row["labelers"]) == 1:
        return f"{row['labelers'][0]} / {row['variants'][0]}"
    return f"{len(row['labelers'])} cells ({', '.join(dict.fromkeys(row['labelers']))})"


def aggregation_rows(entry: dict[str, Any]) -> list[list[str]]:
    """One row per aggregation x labeler cell (``summary.json`` ``aggregations``)."""
    rows = []
    for row in entry.get("aggregations") or []:
        needs = row["needs"] if row["needs"] == "nothing" else f"human labels ({row['n_fit']})"
        coverage = row.get("coverage_at_0_8")
        rows.append(
            [
                row["method"],
                _members(row),
                needs,
                fmt(row["accuracy"]),
                _diff(row.get("vs_always_longer")),
                _diff(row.get("vs_always_first")),
                _number(row.get("log_loss"), 3),
                _number(row.get("ece"), 3),
                _number(row.get("mean_confidence"), 3),
                ("never" if coverage is None else f"{coverage:.2f}")
                if row["accuracy"]["value"] is not None
                else "–",
                row.get("status", "–"),
            ]
        )
    return rows


def aggregation_sentences(entry: dict[str, Any]) -> list[str]:
    """What the aggregation table says: the best method and what it needed, which labelers are
    anti-informative, and the learning curve."""
    from labelbench.report.aggregations import best_aggregation

    rows = entry.get("aggregations") or []
    out = []
    best = best_aggregation(rows)
    if best is not None:
        needs = (
            "no human labels"
            if best["needs"] == "nothing"
            else f"{best['n_fit']} human labels per fit ({best['folds']}-fold cross-fitted)"
        )
        versus = best["vs_always_longer"]
        win = versus.get("low") is not None and versus["low"] > 0
        where = f"on {_members(best)}" if best["labelers"] else "(no labeler: length alone)"
        text = (
            f"Best aggregation: {best['method']} {where}, accuracy "
            f"{fmt(best['accuracy'])}, log-loss {_number(best['log_loss'], 3)}, needing {needs}; "
            f"against always-longer {_diff(versus)}"
            + ("." if win else ": not a win over always-longer.")
        )
        if best.get("status") == "anti-informative":
            text += " It gets there by reversing an anti-informative labeler's choices."
        elif best.get("status") == "uninformative" and best["method"] == "stacked":
            text += " The labeler's weight is not distinguishable from 0: this is length alone."
        out.append(text)
    plain = {
        (tuple(r["labelers"]), tuple(r["variants"])): r for r in rows if r["method"] == "prob-mean"
    }
    for row in rows:
        if row["method"] == "calibrated" and row.get("status") == "anti-informative":
            before = plain.get((tuple(row["labelers"]), tuple(row["variants"])))
            out.append(
                f"{_members(row)} is anti-informative: its fitted weight is below 0 (it prefers "
                "the response humans did not), so calibration reverses its choices: accuracy "
                f"{fmt(before['accuracy'], 2) if before else '–'} as labelled, "
                f"{fmt(row['accuracy'], 2)} reversed."
            )
    curve = entry.get("learning_curve")
    if curve:
        parts = [
            f"{p['method']} {p['n_labels']}: {p['accuracy']:.3f} / {p['log_loss']:.3f}"
            for p in curve["points"]
        ]
        out.append(
            f"Learning curve ({curve['labeler']} / {curve['variant']}; accuracy / log-loss on "
            f"held-out groups by labels fitted on): {'; '.join(parts)}."
        )
    return out


def aggregation_warning(agg: dict[str, Any]) -> str:
    """Why a deployed aggregation's labels are not the labeler's judgement (status)."""
    from labelbench.aggregate import Aggregation

    return Aggregation.model_validate(agg).caveat() or ""


def winner_aggregation_text(winner: dict[str, Any]) -> str:
    """The winner's soft-label aggregation as ``rlaif label`` and ``serve`` apply it."""
    agg = winner.get("aggregation")
    if not agg:
        return ""
    text = f"Its soft labels for training and serving: **{agg['method']}**"
    if agg.get("weight") is not None:
        text += f" (weight {agg['weight']:.3f} on the order-averaged log-odds"
        if agg.get("length_weight") is not None:
            text += f", {agg['length_weight']:.3f} on the log length ratio"
        text += f"; {agg.get('status')}; fitted on {agg['n_fit']} human labels of "
        text += f"{', '.join(agg['fitted_on'])})"
    choice = winner.get("aggregation_choice") or {}
    losses = [
        f"{m} {c['log_loss']:.3f}" for m, c in choice.get("methods", {}).items() if "log_loss" in c
    ]
    if choice.get("criterion"):
        text += f"; chosen by {choice['criterion']}"
    if losses:
        text += f" (cross-fitted log-loss: {'; '.join(losses)})"
    text += "."
    if agg.get("status") in ("uninformative", "anti-informative"):
        text += f" Warning: {aggregation_warning(agg)}."
    return text


def alignment_rows(entry: dict[str, Any]) -> list[list[str]]:
    """Alignment of one data set: labelers, then baselines, then the human ceiling."""
    rows = []
    for cell in entry["cells"]:
        high = cell["high_confidence"] or {}
        lc = cell["length_controlled"]
        rows.append(
            [
                cell["labeler"],
                cell["variant"],
                fmt(cell["alignment"]["accuracy"]),
                fmt(cell["alignment"]["soft_agreement"]),
                fmt(cell["alignment"]["kappa"]),
                fmt(high.get("accuracy")),
                fmt(lc["matched"]),
                fmt(lc["balanced"]),
                fmt(lc["corrected"]),
                _versus(cell.get("vs_reference")),
                fmt(cell.get("tie_agreement")),
            ]
        )
    rows.append(["human ceiling", "leave-one-out", ceiling_text(entry.get("human_ceiling"))])
    rows[-1] += ["–"] * (len(ALIGNMENT_COLUMNS) - 3)
    return rows


def bias_rows(entry: dict[str, Any], timing: list[dict[str, Any]]) -> list[list[str]]:
    """Biases, calibration and cost of one data set."""
    times = {(t["labeler"], t["variant"]): t for t in timing}
    rows = []
    for cell in entry["cells"]:
        t = times.get((cell["labeler"], cell["variant"]), {})
        rows.append(
            [
                cell["labeler"],
                cell["variant"],
                fmt(cell["length_bias"]["ai_prefers_longer"]),
                _slot(cell["position_bias"]),
                fmt(cell["calibration"]["ece"]),
                _unscored(cell["cost"]),
                _label_kind(cell),
                _count(cell["cost"].get("unparsed")),
                _number(cell["cost"]["tokens_per_pair"]),
                _number(cell["cost"].get("requests_per_pair"), 2),
                _number(cell["cost"].get("price_per_1k_pairs"), 4),
                _number(t.get("seconds_per_pair"), 3),
                _number(t.get("pairs_per_second"), 2),
            ]
        )
    return rows


def _unscored(cost: dict[str, Any]) -> str:
    """The unscored rate, with the count of unscored pairs when there are any."""
    count = cost.get("unscored")
    rate = fmt(cost["unscored_rate"])
    return f"{rate} ({count})" if count else rate


def _label_kind(cell: dict[str, Any]) -> str:
    """What a labeler cell's labels are read from, shown only for verdict judges (log-probability
    labels are the default; a column of dashes is left out)."""
    kind = (cell.get("properties") or {}).get("label_kind")
    return kind if isinstance(kind, str) and kind.startswith("verdict") else "–"


def _count(value: Any) -> str:
    return str(int(value)) if isinstance(value, int | float) and value else "–"


def confidence_rows(entry: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    buckets = list(dict.fromkeys(b for c in entry["cells"] for b in c["by_confidence"]))
    rows = [
        [c["labeler"], c["variant"]] + [fmt(c["by_confidence"].get(b)) for b in buckets]
        for c in entry["cells"]
        if c["by_confidence"]
    ]
    names = [b if b in ("unanimous", "split") else f"confidence {b}" for b in buckets]
    return ["labeler", "variant", *names], rows


def ceiling_text(ceiling: dict[str, Any] | None) -> str:
    """The human ceiling with its n (pairs with several annotators); ``n/a (n=0)`` without."""
    if not ceiling or ceiling.get("value") is None:
        return f"n/a (n={(ceiling or {}).get('n') or 0})"
    return f"{fmt(ceiling)} (n={ceiling['n']})"


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


def winner_against_baselines(winner: dict[str, Any]) -> str:
    """One sentence: whether the winner beats each baseline on every data set it ran on."""
    beats = winner.get("beats") or {}
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
    for dataset, flags in (winner.get("flags") or {}).items():
        sentence += f" Flagged on {dataset}: {'; '.join(flags)}."
    return sentence


def _family(entry: dict[str, Any]) -> str:
    """``summarization/`` when every labeler cell's variant has that family, else ``""``."""
    names = {c["variant"] for c in entry["cells"] if c["kind"] == "labeler"}
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


def human_length_preference(entry: dict[str, Any]) -> str:
    cells = entry["cells"]
    return fmt(cells[0]["length_bias"]["human_prefers_longer"]) if cells else "–"


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


def compute_seconds(timing: dict[str, Any]) -> float | None:
    """The labels' compute time: the seconds recorded when each label was computed (kept by the
    cache, so a run that read every label from it still counts them), summed over the run."""
    seconds = [
        float(row["seconds"])
        for rows in timing.values()
        if isinstance(rows, list)
        for row in rows
        if row.get("seconds")
    ]
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


def _context(
    title: str,
    summary: dict[str, Any],
    timing: dict[str, Any],
    winner: dict[str, Any],
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    settings = summary["settings"]
    datasets = []
    found = verdicts(summary)
    for (name, entry), verdict in zip(summary["datasets"].items(), found, strict=True):
        header, rows = confidence_rows(entry)
        family = _family(entry)
        ceiling = entry["human_ceiling"]
        alignment = _filled(ALIGNMENT_COLUMNS, _short(alignment_rows(entry), family))
        biases = _filled(BIAS_COLUMNS, _short(bias_rows(entry, timing.get(name, [])), family))
        confidence = _short(rows, family)
        aggregations = aggregation_rows(entry)
        cell = (verdict.labeler, verdict.variant)
        datasets.append(
            {
                "name": name,
                "anchor": "dataset-" + github_anchor(name),
                "md_anchor": github_anchor(name),
                "best": {
                    "alignment": best_row(alignment[1], *cell),
                    "biases": best_row(biases[1], *cell),
                    "confidence": best_row(confidence, *cell),
                    "aggregations": highest_row(aggregations, 3),
                },
                "entry": entry,
                "family": family,
                "human_longer": human_length_preference(entry),
                "ceiling": ceiling_text(ceiling),
                "alignment": alignment,
                "biases": biases,
                "confidence_header": header,
                "confidence": confidence,
                "verdict": verdict.sentences(),
                "failures": failure_sentences(entry, calibration_bins(summary)),
                "aggregations": aggregations,
                "aggregation_lines": aggregation_sentences(entry),
            }
        )
    notes = [
        note.format(
            level=settings["level"],
            bootstrap=settings["bootstrap"],
            gap=settings["length_gap"],
            tie_margin=TIE_MARGIN,
            same_slot=SAME_SLOT_LIMIT,
        )
        for note in NOTES
    ]
    seconds = compute_seconds(timing)
    return {
        "title": title,
        "compute": duration(seconds) if seconds is not None else None,
        "anchor": github_anchor,
        "provenance": provenance or {},
        "settings": settings,
        "winner": winner,
        "winner_baselines": winner_against_baselines(winner),
        "winner_aggregation": winner_aggregation_text(winner),
        "verdict_columns": VERDICT_COLUMNS,
        "verdicts": verdict_rows(found),
        "labelers": summary.get("labelers", {}),
        "datasets": datasets,
        "aggregation_columns": AGGREGATION_COLUMNS,
        # HTML: agreement and calibration as two tables, so neither is wider than 1200 px
        "aggregation_splits": (
            (0, 1, 2, 3, 4, 5),
            (0, 1, *range(6, len(AGGREGATION_COLUMNS))),
        ),
        "notes": notes,
        "titles": PLOT_TITLES,
        "captions": PLOT_CAPTIONS,
    }


MARKDOWN = """# {{ title }}
{% if provenance %}
Made by `{{ provenance.command }}` in {{ "%.0f"|format(provenance.wall_seconds / 60) }} min of \
wall time, {{ "%.0f"|format(100 * provenance.cached_share) }}% of the labels read from the \
cache ({{ provenance.machine }}).{% endif %}{% if compute %} The labels took {{ compute }} of \
compute, as recorded when each was computed (the label cache keeps these seconds).{% endif %}

Contents: [best cell](#best-labeler-cell-winnerjson) · [verdicts](#verdicts)\
{% for d in datasets %} · [{{ d.name }}](#{{ d.md_anchor }}){% endfor %} · [figures](#figures) · \
[notes](#notes)

Reference variant: `{{ settings.reference_variant }}`; seed {{ settings.seed }}; \
{{ settings.bootstrap }} bootstrap resamples by `{{ settings.bootstrap_unit }}`.

## Best labeler cell (winner.json)

{% if winner.labeler -%}
**{{ winner.labeler }}** with **{{ winner.variant }}**: \
mean accuracy {{ "%.3f"|format(winner.alignment) }} \
over {{ winner.per_dataset|length }} data set(s) ({{ winner.candidates }} candidate(s)\
{% if winner.cost_budget %}, cost budget {{ budget(winner.cost_budget) }}{% endif %}).
{%- if winner_baselines %} {{ winner_baselines }}{% endif %}
{%- if winner_aggregation %} {{ winner_aggregation }}{% endif %}
{%- else -%}
No winner: {{ winner.reason }}.
{%- endif %}
{% if labelers %}
Labelers: {% for name, info in labelers.items() %}{{ name }} \
({{ size(info.parameters) }}){% if not loop.last %}, {% endif %}{% endfor %}.
{% endif %}
## Verdicts

{{ table(verdict_columns, verdicts) }}
{% for d in datasets %}{% for line in d.verdict %}
- {{ line }}{% endfor %}{% endfor %}
{% for d in datasets %}
## {{ d.name }}

{{ d.entry.n_items }} items, {{ d.entry.human_ties }} human ties; \
humans prefer the longer response in {{ d.human_longer }} of pairs with a clear length gap; \
human ceiling {{ d.ceiling }}.{% if d.family %} Variants: `{{ d.family }}…`.{% endif %}

{{ table(*d.alignment, best=d.best.alignment) }}

Biases, calibration and cost:

{{ table(*d.biases, best=d.best.biases) }}

Why each cell fails:
{% for line in d.failures %}
- {{ line }}{% endfor %}
{% if d.confidence %}
Accuracy by human confidence (TL;DR's 1-9 scale, "1,9" = most confident) or by \
annotator agreement (unanimous or split):

{{ table(d.confidence_header, d.confidence, best=d.best.confidence) }}
{% endif %}{% if d.aggregations %}
Soft labels by aggregation (`labelbench.aggregate`; methods that need human labels are \
cross-fitted by group, so each pair is scored by a fit on other groups):

{{ table(aggregation_columns, d.aggregations, best=d.best.aggregations) }}
{% for line in d.aggregation_lines %}
- {{ line }}{% endfor %}
{% endif %}{% endfor %}
## Figures

The best cell of each data set (highest accuracy) is in bold in its tables.
{% for name, file in plots.items() %}
### {{ titles[name] }}

{% if file %}![{{ titles[name] }}]({{ file }})

{{ captions.get(name, "") }}{% else %}Not applicable to this run.{% endif %}
{% endfor %}
## Notes
{% for note in notes %}
- {{ note }}{% endfor %}
"""

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<link rel="icon" href="data:,">
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
td { white-space: nowrap; }
td small { color: #555; font-size: 11px; }
td small.note { white-space: normal; display: inline-block; min-width: 8em; }
th { background: #f0f0f0; }
table.verdicts td { white-space: normal; }
table.aggregations td:nth-child(2) { white-space: normal; }
ul.verdict { margin: 0.4em 0; }
tr.baseline td { color: #666; }
tr.best td { background: #fff1b8; font-weight: 600; }
nav#contents ul { margin: 0.3em 0; }
.scroll { overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eee; }
figure { margin: 1.5em 0; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{% if provenance %}Made by <code>{{ provenance.command }}</code> in
{{ "%.0f"|format(provenance.wall_seconds / 60) }} min of wall time,
{{ "%.0f"|format(100 * provenance.cached_share) }}% of the labels read from the cache
({{ provenance.machine }}).{% endif %}{% if compute %} The labels took <b>{{ compute }}</b> of
compute, as recorded when each was computed (the label cache keeps these seconds).{% endif %}</p>
<p>Reference variant <code>{{ settings.reference_variant }}</code>; seed {{ settings.seed }};
{{ settings.bootstrap }} bootstrap resamples by <code>{{ settings.bootstrap_unit }}</code>.</p>
<nav id="contents"><h2>Contents</h2>
<ul>
<li><a href="#winner">Best labeler cell</a></li>
<li><a href="#verdicts">Verdicts</a></li>
{% for d in datasets %}<li><a href="#{{ d.anchor }}">Data set {{ d.name }}</a></li>
{% endfor %}<li><a href="#figures">Figures</a>: {% for name in images %}<a
href="#{{ name }}">{{ titles[name] }}</a>{% if not loop.last %} · {% endif %}{% endfor %}</li>
<li><a href="#notes">Notes</a></li>
</ul>
<p>The best cell of each data set (highest accuracy) is highlighted in its tables.</p></nav>
<h2 id="winner">Best labeler cell (winner.json)</h2>
{% if winner.labeler %}
<p><b>{{ winner.labeler }}</b> with <b>{{ winner.variant }}</b>: mean accuracy
{{ "%.3f"|format(winner.alignment) }} over {{ winner.per_dataset|length }} data set(s)
({{ winner.candidates }} candidate(s){% if winner.cost_budget %}, cost budget
{{ budget(winner.cost_budget) }}{% endif %}).{% if winner_baselines %}
{{ winner_baselines }}{% endif %}{% if winner_aggregation %}
{{ winner_aggregation|replace("**", "") }}{% endif %}</p>
{% else %}<p>No winner: {{ winner.reason }}.</p>{% endif %}
{% if labelers %}<p>Labelers: {% for name, info in labelers.items() %}{{ name }}
({{ size(info.parameters) }}){% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
<h2 id="verdicts">Verdicts</h2>
<div class="scroll"><table class="verdicts main">
<tr>{% for c in verdict_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in verdicts %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% for d in datasets %}<ul class="verdict">{% for line in d.verdict %}<li>{{ line }}</li>
{% endfor %}</ul>{% endfor %}
{% for d in datasets %}
<h2 id="{{ d.anchor }}">{{ d.name }}</h2>
<p>{{ d.entry.n_items }} items, {{ d.entry.human_ties }} human ties; humans prefer the longer
response in {{ d.human_longer }} of pairs with a clear length gap;
human ceiling {{ d.ceiling }}.
{%- if d.family %} Variants: <code>{{ d.family }}…</code>.{% endif %}</p>
{% for (columns, rows), best in ((d.alignment, d.best.alignment), (d.biases, d.best.biases)) %}
<div class="scroll"><table>
<tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}
<tr{% if loop.index0 == best %} class="best"{% elif row[0] in ("baseline", "human ceiling")
%} class="baseline"{% endif %}>
{% for v in row %}<td>{{ two_lines(v) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endfor %}
<p>Why each cell fails:</p>
<ul class="verdict failures">{% for line in d.failures %}<li>{{ line }}</li>{% endfor %}</ul>
{% if d.confidence %}
<p>Accuracy by human confidence (TL;DR's 1-9 scale, "1,9" = most confident) or by \
annotator agreement (unanimous or split):</p>
<div class="scroll"><table>
<tr>{% for c in d.confidence_header %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in d.confidence %}<tr{% if loop.index0 == d.best.confidence %} class="best"{%
endif %}>{% for v in row %}<td>{{ two_lines(v) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endif %}{% if d.aggregations %}
<p>Soft labels by aggregation (methods that need human labels are cross-fitted by group, so
each pair is scored by a fit on other groups):</p>
{% for keep in aggregation_splits %}
<div class="scroll"><table class="aggregations">
<tr>{% for i in keep %}<th>{{ aggregation_columns[i] }}</th>{% endfor %}</tr>
{% for row in d.aggregations %}<tr{% if loop.index0 == d.best.aggregations %} class="best"{%
endif %}>
{%- for i in keep %}<td>{{ two_lines(row[i]) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endfor %}
<ul class="verdict">{% for line in d.aggregation_lines %}<li>{{ line }}</li>{% endfor %}</ul>
{% endif %}{% endfor %}
<h2 id="figures">Figures</h2>
{% for name, data in images.items() %}
<figure id="{{ name }}">
<figcaption><h3>{{ titles[name] }}</h3></figcaption>
{% if data %}<img alt="{{ titles[name] }}" src="data:image/png;base64,{{ data }}">
<p>{{ captions.get(name, "") }}</p>
{% else %}<p>Not applicable to this run.</p>{% endif %}
</figure>
{% endfor %}
<h2 id="notes">Notes</h2>
<ul>{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
</body>
</html>
"""


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=autoescape, undefined=jinja2.StrictUndefined)
    env.globals["table"] = _markdown_table
    env.globals["budget"] = _budget
    env.globals["size"] = parameter_text
    env.globals["two_lines"] = two_lines
    return env


def render_markdown(
    title: str,
    summary: dict[str, Any],
    timing: dict[str, Any],
    winner: dict[str, Any],
    plot_files: dict[str, str | None],
    provenance: dict[str, Any] | None = None,
) -> str:
    context = _context(title, summary, timing, winner, provenance)
    return _environment(False).from_string(MARKDOWN).render(plots=plot_files, **context)


def render_html(
    title: str,
    summary: dict[str, Any],
    timing: dict[str, Any],
    winner: dict[str, Any],
    images: dict[str, bytes | None],
    provenance: dict[str, Any] | None = None,
) -> str:
    context = _context(title, summary, timing, winner, provenance)
    encoded = {
        name: base64.b64encode(data).decode("ascii") if data else None
        for name, data in images.items()
    }
    return _environment(True).from_string(HTML).render(images=encoded, **context)
