"""Human preference data: the canonical record, loaders for the original releases, splits, filters."""

from labelbench.data.record import Annotation, Comparison, PromptItem, content_hash

__all__ = ["Annotation", "Comparison", "PromptItem", "content_hash"]
