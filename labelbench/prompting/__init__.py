"""The prompt-template engine: variants as data, rendered in a sandbox, planned into requests.

Templates and variants live in ``prompts/`` (see its README). ``plan`` turns comparisons and a
variant into the exact requests (``labelbench.requests``) a labeler must run.
"""

from labelbench.prompting.planner import (
    Exemplar,
    PlanResult,
    describe_plan,
    direct_score_request,
    draw_exemplars,
    plan,
)
from labelbench.prompting.tokens import answer_token_ids, prompt_token_ids
from labelbench.prompting.variants import Variant, VariantSpec, list_variants, load_variant

__all__ = [
    "Exemplar",
    "PlanResult",
    "Variant",
    "VariantSpec",
    "answer_token_ids",
    "describe_plan",
    "direct_score_request",
    "draw_exemplars",
    "list_variants",
    "load_variant",
    "plan",
    "prompt_token_ids",
]
