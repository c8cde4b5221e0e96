"""The labeling engine: backends that score answer tokens, a resumable cache, and the runner.

``label(planned, backend, cache=...)`` labels ``labelbench.requests.PlannedRequest`` items;
``preferences(result.rows)`` turns them into P(A) per item. Backends: ``TransformersBackend``
(in process), ``HTTPBackend`` (OpenAI-compatible server), ``VLLMBackend`` (optional extra).
``labeler.open_labeler(spec)`` opens a ``LabelerSpec`` into a ``Labeler``: the one labelling path
(plan → cache → backend → preferences or direct scores) every user of AI labels goes through.
"""

from labelbench.labeling.answers import expected_score, preference_a, softmax
from labelbench.labeling.backend import Backend, Sample, Scored
from labelbench.labeling.cache import LabelCache, default_cache_dir, request_key
from labelbench.labeling.runner import (
    Accounting,
    LabelResult,
    LabelRow,
    Preference,
    SampleResult,
    accounting,
    direct_scores,
    label,
    preferences,
)

__all__ = [
    "Accounting",
    "Backend",
    "LabelCache",
    "LabelResult",
    "LabelRow",
    "Preference",
    "Sample",
    "SampleResult",
    "Scored",
    "accounting",
    "default_cache_dir",
    "direct_scores",
    "expected_score",
    "label",
    "preference_a",
    "preferences",
    "request_key",
    "softmax",
]
