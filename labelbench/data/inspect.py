"""Descriptive statistics of a loaded comparison set."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from labelbench.data.loaders import Loaded
from labelbench.data.record import Comparison


def _lengths(values: pd.Series) -> dict[str, float]:
    return {
        "mean": round(float(values.mean()), 1),
        "median": float(values.median()),
        "p90": float(values.quantile(0.9)),
        "max": int(values.max()),
    }


def summarize(loaded: Loaded[Comparison]) -> dict[str, Any]:
    """Counts, label balance, ties, multi-annotator items and length statistics."""
    items = list(loaded)
    frame = pd.DataFrame(
        {
            "group": [c.group_id for c in items],
            "pair": [c.pair_key for c in items],
            "pref_a": [c.human_pref_a for c in items],
            "n_annotations": [len(c.annotations) for c in items],
            "context": [len(c.context) for c in items],
            "a": [len(c.response_a) for c in items],
            "b": [len(c.response_b) for c in items],
        }
    )
    annotators = {a.annotator for c in items for a in c.annotations if a.annotator is not None}
    confidences = Counter(
        a.confidence for c in items for a in c.annotations if a.confidence is not None
    )
    labelled = frame.dropna(subset=["pref_a"])
    decided = labelled[(labelled.pref_a - 0.5).abs() > 1e-9]
    longer_won = ((decided.pref_a > 0.5) == (decided.a > decided.b))[decided.a != decided.b]
    rows_per_pair = frame.groupby("pair").size()
    return {
        "source": loaded.source,
        "format": loaded.format,
        "comparisons": len(items),
        "groups": int(frame.group.nunique()) if items else 0,
        "unique_pairs": int(frame.pair.nunique()) if items else 0,
        "annotators": len(annotators),
        "annotations_per_comparison": dict(sorted(Counter(frame.n_annotations).items())),
        "multi_annotator_comparisons": int((frame.n_annotations > 1).sum()),
        "pairs_labelled_in_several_rows": int((rows_per_pair > 1).sum()),
        "label_balance": {
            "a_preferred": int((labelled.pref_a > 0.5 + 1e-9).sum()),
            "b_preferred": int((labelled.pref_a < 0.5 - 1e-9).sum()),
            "tie": int(((labelled.pref_a - 0.5).abs() <= 1e-9).sum()),
            "unlabelled": int(frame.pref_a.isna().sum()),
        },
        "longer_preferred_share": round(float(longer_won.mean()), 4) if len(longer_won) else None,
        "confidence": {int(k): v for k, v in sorted(confidences.items())},
        "order": dict(Counter(c.order for c in items)),
        "empty_responses": int(((frame.a == 0) | (frame.b == 0)).sum()),
        "empty_contexts": int((frame.context == 0).sum()) if items else 0,
        "diverges_early": sum(bool(c.meta.get("diverges_early")) for c in items),
        "map": loaded.columns.to_spec() if loaded.columns is not None else None,
        "length_chars": {
            "context": _lengths(frame.context),
            "response_a": _lengths(frame.a),
            "response_b": _lengths(frame.b),
        }
        if items
        else {},
        "invalid_records": len(loaded.invalid),
        "invalid": [str(error) for error in loaded.invalid],
    }
