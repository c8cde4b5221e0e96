"""Markdown and self-contained HTML pages from the summary, the timing, the winner and the plots.

The tables and sentences are made in ``labelbench.report.tables``, the page layouts are the
templates of ``labelbench.report.templates``; their public names stay importable from here."""

from __future__ import annotations

import base64
from typing import Any

import jinja2

from labelbench.metrics import TIE_MARGIN
from labelbench.report.plots import PLOT_CAPTIONS, PLOT_TITLES
from labelbench.report.tables import (
    AGGREGATION_COLUMNS,
    ALIGNMENT_COLUMNS,
    BIAS_COLUMNS,
    VERDICT_COLUMNS,
    _budget,
    _family,
    _filled,
    _markdown_table,
    _short,
    aggregation_rows,
    aggregation_sentences,
    alignment_rows,
    best_row,
    bias_rows,
    ceiling_text,
    compute_seconds,
    confidence_rows,
    duration,
    fmt,
    github_anchor,
    highest_row,
    human_length_preference,
    parameter_text,
    two_lines,
    verdict_rows,
    winner_against_baselines,
    winner_aggregation_text,
)
from labelbench.report.templates import HTML, MARKDOWN
from labelbench.report.verdict import SAME_SLOT_LIMIT, failure_sentences, verdicts
from labelbench.rundir import RunRecord, Summary, Timing, WinnerFile

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


def _context(
    title: str,
    summary: Summary,
    timing: Timing,
    winner: WinnerFile,
    provenance: RunRecord | None = None,
) -> dict[str, Any]:
    settings = summary.settings
    datasets = []
    found = verdicts(summary)
    for (name, entry), verdict in zip(summary.datasets.items(), found, strict=True):
        header, rows = confidence_rows(entry)
        family = _family(entry)
        ceiling = entry.human_ceiling
        alignment = _filled(ALIGNMENT_COLUMNS, _short(alignment_rows(entry), family))
        timed = bias_rows(entry, timing.cells.get(name, []))
        biases = _filled(BIAS_COLUMNS, _short(timed, family))
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
                "failures": failure_sentences(entry, settings.calibration_bins),
                "aggregations": aggregations,
                "aggregation_lines": aggregation_sentences(entry),
            }
        )
    notes = [
        note.format(
            level=settings.level,
            bootstrap=settings.bootstrap,
            gap=settings.length_gap,
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
        "budget_limits": (
            winner.cost_budget.model_dump(exclude_none=True) if winner.cost_budget else {}
        ),
        "winner_baselines": winner_against_baselines(winner),
        "winner_aggregation": winner_aggregation_text(winner),
        "verdict_columns": VERDICT_COLUMNS,
        "verdicts": verdict_rows(found),
        "labelers": summary.labelers,
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


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(autoescape=autoescape, undefined=jinja2.StrictUndefined)
    env.globals["table"] = _markdown_table
    env.globals["budget"] = _budget
    env.globals["size"] = parameter_text
    env.globals["two_lines"] = two_lines
    return env


def render_markdown(
    title: str,
    summary: Summary,
    timing: Timing,
    winner: WinnerFile,
    plot_files: dict[str, str | None],
    provenance: RunRecord | None = None,
) -> str:
    """report.md: the verdicts, per data set its tables, the figures (``plot_files``: name ->
    path relative to the run folder, None where a figure does not apply) and the notes."""
    context = _context(title, summary, timing, winner, provenance)
    return _environment(False).from_string(MARKDOWN).render(plots=plot_files, **context)


def render_html(
    title: str,
    summary: Summary,
    timing: Timing,
    winner: WinnerFile,
    images: dict[str, bytes | None],
    provenance: RunRecord | None = None,
) -> str:
    """report.html: what ``render_markdown`` writes, on one self-contained page (``images``:
    name -> PNG bytes, embedded; None where a figure does not apply)."""
    context = _context(title, summary, timing, winner, provenance)
    encoded = {
        name: base64.b64encode(data).decode("ascii") if data else None
        for name, data in images.items()
    }
    return _environment(True).from_string(HTML).render(images=encoded, **context)


__all__ = [
    "NOTES",
    "compute_seconds",
    "duration",
    "fmt",
    "github_anchor",
    "render_html",
    "render_markdown",
    "winner_against_baselines",
]
