"""Published AI judges' labels shipped beside a data set: reference labelers for the tables."""

from __future__ import annotations

from pathlib import Path

from labelbench.data.sources import read_records
from labelbench.errors import InputError

_PANDALM_RESULT = {"1": 1.0, "2": 0.0, "0": 0.5, "tie": 0.5}


def load_pandalm_judge(path: str | Path) -> dict[str, float | None]:
    """P(A) by comparison id (``pandalm-<idx>``) from a PandaLM judge file (GPT-3.5 or
    PandaLM-7B). An unparseable verdict (the release has 'garbage') is None: unscored."""
    labels: dict[str, float | None] = {}
    for place, raw in read_records(path):
        if isinstance(raw, InputError):
            raise raw
        result_keys = [key for key in raw if key.endswith("_result")]
        if "idx" not in raw or len(result_keys) != 1:
            raise place.error("expected 'idx' and one '<judge>_result'", field="idx")
        verdict = str(raw[result_keys[0]]).strip().lower()
        labels[f"pandalm-{raw['idx']}"] = _PANDALM_RESULT.get(verdict)
    return labels
