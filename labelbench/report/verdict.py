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

from labelbench.metrics import TIE_MARGIN
from labelbench.report.summary import CEILING, VERSUS, rank_key
from labelbench.rundir import Cell, DatasetSummary, Estimate, Paired, Summary, WinnerFile

BEATS, LOSES, UNCLEAR, UNKNOWN = "beats", "loses", "no clear difference", "n/a"
IN_WORDS = {BEATS: "beats it", LOSES: "below it", UNCLEAR: "no clear difference", UNKNOWN: "n/a"}
MINUS = "\u2212"

SAME_SLOT_LIMIT = 0.5
"""A cell whose same slot wins in both orders for more than this share of its pairs decides
mostly by position: its "beats" is flagged on the same line, and position is named as its
failure."""
NEAR_HALF_LIMIT = 0.9
"""A cell with at least this share of its P(A) within ``TIE_MARGIN`` of 1/2 (by its reliability
bins) barely separates the responses."""
UNSCORED_LIMIT = 0.05
"""A cell with more than this share of unscored pairs is measured on fewer pairs than asked."""


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
    def from_block(cls, baseline: str, block: Paired | None, reference: Estimate | None) -> Versus:
        """From a summary ``vs_baselines`` block and the baseline's own estimate (either may be
        missing: the outcome is then ``n/a``)."""
        diff = block.difference if block is not None else None
        return cls(
            baseline,
            reference.value if reference is not None else None,
            reference.n if reference is not None else None,
            diff.value if diff is not None else None,
            diff.low if diff is not None else None,
            diff.high if diff is not None else None,
            diff.n if diff is not None else 0,
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


def _value(block: Estimate | None) -> float | None:
    return block.value if block is not None else None


def _percent(value: float) -> str:
    return f"{value:.0%}"


@dataclass(frozen=True)
class Caveats:
    """The figures of one labeler cell that say why it fails, as the summary computed them."""

    same_slot: float | None  # share of pairs where the same slot wins in both orders
    slot: str | None  # which slot: first, second (none: as often each)
    near_half: float | None  # share of P(A) in the reliability bins within TIE_MARGIN of 1/2
    ai_longer: float | None  # share of clear-length-gap pairs where it prefers the longer one
    human_longer: float | None  # the same for the humans
    unscored: float | None  # share of pairs without a label
    low: float = 0.5 - TIE_MARGIN
    high: float = 0.5 + TIE_MARGIN

    @classmethod
    def from_cell(cls, cell: Cell, bins: int) -> Caveats:
        """From a summary cell; ``bins`` is the run's number of calibration bins."""
        position = cell.position_bias
        table = cell.calibration.reliability
        total = sum(row.n for row in table)
        central = [
            row
            for row in table
            if row.bin / bins >= 0.5 - TIE_MARGIN - 1e-9
            and (row.bin + 1) / bins <= 0.5 + TIE_MARGIN + 1e-9
        ]
        near = sum(row.n for row in central) / total if total else None
        return cls(
            same_slot=_value(position.same_slot) if position is not None else None,
            slot=position.slot if position is not None else None,
            near_half=near,
            ai_longer=_value(cell.length_bias.ai_prefers_longer),
            human_longer=_value(cell.length_bias.human_prefers_longer),
            unscored=_value(cell.cost.unscored_rate),
        )

    @property
    def slot_biased(self) -> bool:
        return self.same_slot is not None and self.same_slot > SAME_SLOT_LIMIT

    @property
    def length_against_humans(self) -> bool:
        """It prefers the longer response where humans prefer the shorter, or the reverse."""
        if self.ai_longer is None or self.human_longer is None:
            return False
        return (self.ai_longer - 0.5) * (self.human_longer - 0.5) < 0

    @property
    def near_half_mostly(self) -> bool:
        return self.near_half is not None and self.near_half >= NEAR_HALF_LIMIT

    @property
    def mostly_unscored(self) -> bool:
        return self.unscored is not None and self.unscored > UNSCORED_LIMIT

    def _slot_text(self) -> str:
        which = f"the {self.slot} slot" if self.slot in ("first", "second") else "one slot"
        return (
            f"{which} wins in both orders for {_percent(self.same_slot or 0)} of pairs, above "
            f"the {_percent(SAME_SLOT_LIMIT)} limit"
        )

    def _length_text(self) -> str:
        ai, human = self.ai_longer or 0.0, self.human_longer or 0.0
        side = "longer" if ai > 0.5 else "shorter"
        share = ai if ai > 0.5 else 1 - ai
        human_side = "longer" if human > 0.5 else "shorter"
        human_share = human if human > 0.5 else 1 - human
        return (
            f"it prefers the {side} response in {_percent(share)} of pairs with a clear length "
            f"gap, the humans the {human_side} in {_percent(human_share)}"
        )

    def _near_text(self) -> str:
        return (
            f"{_percent(self.near_half or 0)} of its P(A) lie within {self.low:.1f}-{self.high:.1f}"
        )

    def flags(self) -> list[str]:
        """Why a "beats" of this cell must not stand alone: position decides most of its labels,
        or its length preference runs against the humans'."""
        found = []
        if self.slot_biased:
            found.append(self._slot_text())
        if self.length_against_humans:
            found.append(self._length_text())
        return found

    def failures(self) -> list[str]:
        """Each failure the figures show, the dominant one first: most pairs unscored, then
        position (it decides the labels outright), then near-0.5 preferences, a length
        preference against the humans', a few unscored pairs."""
        unscored = f"{_percent(self.unscored or 0)} of its pairs are unscored"
        found = []
        if self.mostly_unscored and (self.unscored or 0) > 0.5:
            found.append(unscored)
        if self.slot_biased:
            found.append(self._slot_text())
        if self.near_half_mostly:
            found.append(self._near_text())
        if self.length_against_humans:
            found.append(self._length_text())
        if self.mostly_unscored and (self.unscored or 0) <= 0.5:
            found.append(unscored)
        return found

    def sentence(self, cell: str) -> str:
        """One sentence naming the cell's dominant failure (and the others), or saying that
        none of the checks fails."""
        failures = self.failures()
        if not failures:
            parts = []
            if self.same_slot is not None:
                parts.append(f"same slot in {_percent(self.same_slot)} of pairs")
            if self.near_half is not None:
                parts.append(
                    f"{_percent(self.near_half)} of P(A) within {self.low:.1f}-{self.high:.1f}"
                )
            if self.unscored is not None:
                parts.append(f"{_percent(self.unscored)} unscored")
            detail = f" ({', '.join(parts)})" if parts else ""
            return (
                f"{cell}: no dominant failure among position, near-0.5 preferences, length "
                f"against the humans and unscored pairs{detail}."
            )
        sentence = f"{cell}: fails mainly because {failures[0]}"
        if len(failures) > 1:
            sentence += "; also " + "; ".join(failures[1:])
        return sentence + "."


def failure_sentences(entry: DatasetSummary, bins: int) -> list[str]:
    """One sentence per labeler cell of a data set naming its dominant failure."""
    return [
        Caveats.from_cell(cell, bins).sentence(f"{cell.labeler} / {cell.variant}")
        for cell in entry.labeler_cells()
    ]


@dataclass(frozen=True)
class Verdict:
    """One data set's verdict: its best labeler cell and how it compares."""

    dataset: str
    labeler: str | None  # None: no labeler cell with an accuracy
    variant: str | None
    accuracy: Estimate | None
    versus: tuple[Versus, ...]
    unbeaten: tuple[str, ...]  # rule baselines that no labeler cell beats
    caveats: Caveats | None = None  # the best cell's failure figures

    def cell(self) -> str:
        return f"{self.labeler} / {self.variant}"

    def outcome_text(self, versus: Versus) -> str:
        """``beats it``, ``below it``, ...; a "beats" of a cell whose position decides most
        labels, or whose length preference runs against the humans', says so."""
        words = IN_WORDS[versus.outcome]
        flags = self.caveats.flags() if self.caveats is not None else []
        if versus.outcome == BEATS and flags:
            words += " (flagged: " + "; ".join(flags) + ")"
        return words

    def sentences(self) -> list[str]:
        """The verdict in plain words: the best cell against each baseline, then one sentence
        per rule baseline that no labeler beats."""
        if self.labeler is None:
            return [f"{self.dataset}: no labeler cell has an accuracy, so there is no verdict."]
        value = self.accuracy.value if self.accuracy is not None else None
        n = self.accuracy.n if self.accuracy is not None else 0
        parts = [
            f"{v.baseline_text()}: {v.interval()}"
            + ("" if v.difference is None else f", {self.outcome_text(v)}")
            for v in self.versus
        ]
        lines = [
            f"{self.dataset}: the best cell, {self.cell()}, scores {plain(value)} "
            f"(n={n}). Against " + "; ".join(parts) + "."
        ]
        for versus in self.versus:
            if versus.baseline in self.unbeaten:
                lines.append(
                    f"No labeler beats {versus.baseline} on {self.dataset}: the best, "
                    f"{self.cell()}, scores {plain(value)} against "
                    f"{plain(versus.baseline_value)} (difference {versus.interval()})."
                )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "labeler": self.labeler,
            "variant": self.variant,
            "versus": {v.baseline: v.to_json() for v in self.versus},
        }


def _references(entry: DatasetSummary) -> dict[str, Estimate | None]:
    """Each rule baseline's accuracy estimate and the human ceiling on one data set."""
    refs: dict[str, Estimate | None] = {
        c.variant: c.alignment.accuracy for c in entry.baseline_cells()
    }
    refs[CEILING] = entry.human_ceiling
    return refs


def versus_all(cell: Cell, entry: DatasetSummary) -> tuple[Versus, ...]:
    """A labeler cell against always-longer, always-first and the human ceiling."""
    refs = _references(entry)
    blocks = cell.vs_baselines or {}
    return tuple(
        Versus.from_block(name, blocks.get(name), refs.get(name)) for name in (*VERSUS, CEILING)
    )


def dataset_verdict(dataset: str, entry: DatasetSummary, bins: int = 10) -> Verdict:
    """The best labeler cell of one data set (highest accuracy; ties broken as winner.json breaks
    them, by ``rank_key``: fewer tokens per pair, then name) against
    the baselines; ``entry`` is ``summary.datasets[dataset]``, ``bins`` the run's number of
    calibration bins."""
    cells = [c for c in entry.labeler_cells() if c.accuracy is not None]
    if not cells:
        return Verdict(dataset, None, None, None, (), ())
    best = min(
        cells,
        key=lambda c: rank_key(c.accuracy or 0.0, c.cost.tokens_per_pair, c.labeler, c.variant),
    )
    beaten = {v.baseline for c in cells for v in versus_all(c, entry) if v.beats}
    return Verdict(
        dataset,
        best.labeler,
        best.variant,
        best.alignment.accuracy,
        versus_all(best, entry),
        tuple(name for name in VERSUS if name not in beaten),
        Caveats.from_cell(best, bins),
    )


def verdicts(summary: Summary) -> list[Verdict]:
    """One verdict per data set, in the summary's order."""
    bins = summary.settings.calibration_bins
    return [dataset_verdict(name, entry, bins) for name, entry in summary.datasets.items()]


def winner_versus_baselines(winner: WinnerFile, summary: Summary) -> WinnerFile:
    """``winner`` with the fields it gains from the summary: for the winning (labeler, variant),
    per data set it ran on, its difference to each baseline with the interval and whether it
    beats it (``versus_baselines``); and over all those data sets, ``beats[baseline]``: True when
    it beats it on every one, False when it fails to on any, None when an interval is missing
    and none failed; ``flags[data set]``: why a "beats" there must not stand alone
    (``Caveats.flags``), for the data sets where it beats a baseline with such a caveat."""
    if winner.labeler is None or winner.variant is None:
        return winner.updated(versus_baselines={}, beats={}, flags={})
    bins = summary.settings.calibration_bins
    flags: dict[str, list[str]] = {}
    per_dataset: dict[str, dict[str, Any]] = {}
    overall: dict[str, bool | None] = {}
    for dataset, entry in summary.datasets.items():
        cell = entry.cell(winner.labeler, winner.variant)
        if cell is None:
            continue
        comparisons = versus_all(cell, entry)
        per_dataset[dataset] = {v.baseline: v.to_json() for v in comparisons}
        found = Caveats.from_cell(cell, bins).flags()
        if found and any(v.beats for v in comparisons):
            flags[dataset] = found
        for v in comparisons:
            before = overall.get(v.baseline, True)
            if before is False or v.beats is False:
                overall[v.baseline] = False
            else:
                overall[v.baseline] = None if (before is None or v.beats is None) else True
    return winner.updated(versus_baselines=per_dataset, beats=overall, flags=flags)
