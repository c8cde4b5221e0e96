"""The report's judgement: per data set, the best labeler cell against the trivial baselines
(always-longer, always-first) and the human ceiling, and for ``winner.json`` whether the winner
beats each of them.

A cell *beats* a baseline when the whole paired interval of its accuracy minus the baseline's
lies above 0, *loses to* it when the whole interval lies below 0, and shows *no clear
difference* otherwise; when the interval cannot be estimated the outcome is ``n/a``. The
differences are the summary's ``vs_baselines`` blocks (``labelbench.report.summary``): paired
over the same items (the human ceiling: over the multiply-annotated pairs), cluster bootstrap by
group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labelbench.report.summary import BASELINE, CEILING, VERSUS, rank_key

BEATS, LOSES, UNCLEAR, UNKNOWN = "beats", "loses", "no clear difference", "n/a"
IN_WORDS = {BEATS: "beats it", LOSES: "below it", UNCLEAR: "no clear difference", UNKNOWN: "n/a"}
MINUS = "\u2212"


def signed(value: float | None, digits: int = 2) -> str:
    """``+0.07`` / ``−0.14`` (a true minus sign); ``n/a`` for None."""
    if value is None:
        return UNKNOWN
    text = f"{value:+.{digits}f}"
    return text.replace("-", MINUS)


def plain(value: float | None, digits: int = 2) -> str:
    """``0.75``; ``n/a`` for None."""
    return UNKNOWN if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class Versus:
    """One comparison: a labeler cell's accuracy minus a baseline's (or the ceiling's)."""

    baseline: str
    baseline_value: float | None  # the baseline's accuracy (ceiling: agreement) on the data set
    baseline_n: int | None  # items behind it (ceiling: multiply-annotated pairs)
    difference: float | None
    low: float | None
    high: float | None
    n: int  # items (ceiling: pairs) in the paired difference

    @classmethod
    def from_block(
        cls, baseline: str, block: dict[str, Any] | None, reference: dict[str, Any] | None
    ) -> Versus:
        """From a summary ``vs_baselines`` block and the baseline's own estimate (either may be
        missing: the outcome is then ``n/a``)."""
        diff = (block or {}).get("difference") or {}
        ref = reference or {}
        return cls(
            baseline,
            ref.get("value"),
            ref.get("n"),
            diff.get("value"),
            diff.get("low"),
            diff.get("high"),
            int(diff.get("n") or 0),
        )

    @property
    def outcome(self) -> str:
        if self.low is None or self.high is None:
            return UNKNOWN
        if self.low > 0:
            return BEATS
        if self.high < 0:
            return LOSES
        return UNCLEAR

    @property
    def beats(self) -> bool | None:
        """True when the interval lies above 0; None when it cannot be estimated."""
        return None if self.outcome == UNKNOWN else self.outcome == BEATS

    def interval(self) -> str:
        """``−0.14 [−0.20, −0.08]``, or ``n/a`` parts where a figure is missing."""
        if self.difference is None:
            return UNKNOWN
        if self.low is None or self.high is None:
            return f"{signed(self.difference)} [{UNKNOWN}]"
        return f"{signed(self.difference)} [{signed(self.low)}, {signed(self.high)}]"

    def baseline_text(self) -> str:
        """The baseline's name and score; the ceiling always with its n."""
        text = f"{self.baseline} {plain(self.baseline_value)}"
        return text + (f", n={self.baseline_n or 0}" if self.baseline == CEILING else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline_accuracy": self.baseline_value,
            "baseline_n": self.baseline_n,
            "difference": {
                "value": self.difference,
                "low": self.low,
                "high": self.high,
                "n": self.n,
            },
            "beats": self.beats,
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class Verdict:
    """One data set's verdict: its best labeler cell and how it compares."""

    dataset: str
    labeler: str | None  # None: no labeler cell with an accuracy
    variant: str | None
    accuracy: dict[str, Any] | None
    versus: tuple[Versus, ...]
    unbeaten: tuple[str, ...]  # rule baselines that no labeler cell beats

    def cell(self) -> str:
        return f"{self.labeler} / {self.variant}"

    def sentences(self) -> list[str]:
        """The verdict in plain words: the best cell against each baseline, then one sentence
        per rule baseline that no labeler beats."""
        if self.labeler is None:
            return [f"{self.dataset}: no labeler cell has an accuracy, so there is no verdict."]
        acc = self.accuracy or {}
        parts = [
            f"{v.baseline_text()}: {v.interval()}"
            + ("" if v.difference is None else f", {IN_WORDS[v.outcome]}")
            for v in self.versus
        ]
        lines = [
            f"{self.dataset}: the best cell, {self.cell()}, scores {plain(acc.get('value'))} "
            f"(n={acc.get('n', 0)}). Against " + "; ".join(parts) + "."
        ]
        for versus in self.versus:
            if versus.baseline in self.unbeaten:
                lines.append(
                    f"No labeler beats {versus.baseline} on {self.dataset}: the best, "
                    f"{self.cell()}, scores {plain(acc.get('value'))} against "
                    f"{plain(versus.baseline_value)} (difference {versus.interval()})."
                )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "labeler": self.labeler,
            "variant": self.variant,
            "versus": {v.baseline: v.to_json() for v in self.versus},
        }


def _accuracy(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's accuracy estimate; ``{}`` when the summary has none."""
    return (cell.get("alignment") or {}).get("accuracy") or {}


def _references(entry: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Each rule baseline's accuracy estimate and the human ceiling on one data set."""
    refs: dict[str, dict[str, Any] | None] = {
        c["variant"]: _accuracy(c) for c in entry["cells"] if c["kind"] == BASELINE
    }
    refs[CEILING] = entry.get("human_ceiling")
    return refs


def versus_all(cell: dict[str, Any], entry: dict[str, Any]) -> tuple[Versus, ...]:
    """A labeler cell against always-longer, always-first and the human ceiling."""
    refs = _references(entry)
    blocks = cell.get("vs_baselines") or {}
    return tuple(
        Versus.from_block(name, blocks.get(name), refs.get(name)) for name in (*VERSUS, CEILING)
    )


def dataset_verdict(dataset: str, entry: dict[str, Any]) -> Verdict:
    """The best labeler cell of one data set (highest accuracy; ties broken as winner.json breaks
    them, by ``rank_key``: fewer tokens per pair, then name) against
    the baselines; ``entry`` is ``summary["datasets"][dataset]``."""
    cells = [
        c
        for c in entry["cells"]
        if c["kind"] == "labeler" and _accuracy(c).get("value") is not None
    ]
    if not cells:
        return Verdict(dataset, None, None, None, (), ())
    best = min(
        cells,
        key=lambda c: rank_key(
            _accuracy(c)["value"],
            (c.get("cost") or {}).get("tokens_per_pair"),
            c["labeler"],
            c["variant"],
        ),
    )
    beaten = {v.baseline for c in cells for v in versus_all(c, entry) if v.beats}
    return Verdict(
        dataset,
        best["labeler"],
        best["variant"],
        _accuracy(best),
        versus_all(best, entry),
        tuple(name for name in VERSUS if name not in beaten),
    )


def verdicts(summary: dict[str, Any]) -> list[Verdict]:
    """One verdict per data set, in the summary's order."""
    return [dataset_verdict(name, entry) for name, entry in summary["datasets"].items()]


def winner_versus_baselines(winner: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The fields ``winner.json`` gains: for the winning (labeler, variant), per data set it ran
    on, its difference to each baseline with the interval and whether it beats it; and over all
    those data sets, ``beats[baseline]``: True when it beats it on every one, False when it fails
    to on any, None when an interval is missing and none failed."""
    if winner.get("labeler") is None:
        return {"versus_baselines": {}, "beats": {}}
    key = (winner["labeler"], winner["variant"])
    per_dataset: dict[str, dict[str, Any]] = {}
    overall: dict[str, bool | None] = {}
    for dataset, entry in summary["datasets"].items():
        cell = next(
            (
                c
                for c in entry["cells"]
                if c["kind"] == "labeler" and (c["labeler"], c["variant"]) == key
            ),
            None,
        )
        if cell is None:
            continue
        comparisons = versus_all(cell, entry)
        per_dataset[dataset] = {v.baseline: v.to_json() for v in comparisons}
        for v in comparisons:
            before = overall.get(v.baseline, True)
            if before is False or v.beats is False:
                overall[v.baseline] = False
            else:
                overall[v.baseline] = None if (before is None or v.beats is None) else True
    return {"versus_baselines": per_dataset, "beats": overall}
