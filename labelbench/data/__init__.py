"""Human preference data: the canonical record, loaders for the original releases, splits."""

from labelbench.data.formats import ColumnMap
from labelbench.data.loaders import Loaded, load_comparisons, load_prompts, load_records
from labelbench.data.record import Annotation, Comparison, PromptItem, content_hash

__all__ = [
    "Annotation",
    "ColumnMap",
    "Comparison",
    "Loaded",
    "PromptItem",
    "content_hash",
    "load_comparisons",
    "load_prompts",
    "load_records",
]
