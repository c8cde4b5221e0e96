"""Golden renders of every built-in variant on invented pairs (no real data), shared by the
prompt-engine tests. Regenerate with LABELBENCH_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labelbench.data.record import Annotation, Comparison
from labelbench.prompting import (
    describe_plan,
    direct_score_request,
    list_variants,
    load_variant,
    plan,
)

PAIRS: dict[str, Comparison] = {
    "summarization": Comparison(
        id="golden-sum",
        group_id="golden-sum-post",
        task="summarization",
        context=(
            "Our team's weekly meeting keeps running two hours over because two people argue about "
            "the same topic every time. I'm the newest member. Is it my place to suggest a time "
            "limit, or should I talk to the manager privately first?"
        ),
        response_a=" Newest team member wants meetings to stop overrunning; ask group or boss?",
        response_b=" Meetings are long.",
        annotations=(Annotation(pref_a=1.0),),
        meta={"subreddit": "work", "title": "Meetings always overrun"},
    ),
    "dialogue": Comparison(
        id="golden-dia",
        group_id="golden-dia-ctx",
        task="dialogue",
        context=(
            "\n\nHuman: Can you suggest a name for a small bakery?\n\nAssistant: Sure! Any "
            "style in mind?\n\nHuman: Something cosy and old-fashioned.\n\nAssistant:"
        ),
        response_a=' How about "The Warm Crust" or "Grandma\'s Oven"?',
        response_b=" Bakeries sell bread.",
        annotations=(Annotation(pref_a=1.0),),
    ),
    "instruction": Comparison(
        id="golden-ins",
        group_id="golden-ins-ctx",
        task="instruction",
        context="Sort these numbers from smallest to largest.\n12, 3, 7",
        response_a="12, 7, 3",
        response_b="3, 7, 12",
        annotations=(Annotation(pref_a=0.0),),
        meta={"instruction": "Sort these numbers from smallest to largest.", "input": "12, 3, 7"},
    ),
}


def pair_for(task: str, suffix: str = "") -> Comparison:
    """The fixed pair for a task kind, optionally with a distinct id (a second item)."""
    pair = PAIRS[task]
    if not suffix:
        return pair
    return pair.model_copy(update={"id": pair.id + suffix, "group_id": pair.group_id + suffix})


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# ---- golden renders -------------------------------------------------------------------------


GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LABELBENCH_UPDATE_GOLDEN") == "1"


def _check(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing; run with LABELBENCH_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"render differs from {path}"


@pytest.mark.parametrize("name", list_variants())
def test_variant_renders_its_golden_text(name: str) -> None:
    variant = load_variant(name)
    result = plan([PAIRS[variant.spec.task]], variant)
    _check(GOLDEN / f"{name}.txt", describe_plan(result))


FAMILIES = ["summarization", "dialogue_helpful", "dialogue_harmless", "instruction"]


@pytest.mark.parametrize("family", FAMILIES)
def test_direct_score_renders_its_golden_text(family: str) -> None:
    variant = load_variant(f"{family}/base-0shot")
    pair = PAIRS[variant.spec.task]
    request = direct_score_request(pair.context, pair.response_a, family, meta=pair.meta)
    assert request.answers == tuple(str(i) for i in range(1, 10))
    _check(GOLDEN / family / "direct-score.txt", request.text)


def test_every_golden_file_belongs_to_a_variant() -> None:
    expected = {f"{name}.txt" for name in list_variants()}
    expected |= {f"{family}/direct-score.txt" for family in FAMILIES}
    found = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.txt")}
    assert found == expected
