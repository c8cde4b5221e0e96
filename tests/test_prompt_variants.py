"""Variants as data: composition by include + overrides; clear load-time errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_prompt_golden import PAIRS

from labelbench.errors import InputError
from labelbench.prompting import list_variants, load_variant, plan
from labelbench.prompting.variants import PROMPTS_PATH_ENV


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_variant(path)
    return caught.value


def test_every_builtin_variant_loads() -> None:
    names = list_variants()
    assert len(names) == 56  # 13 variants x 4 task families + 4 summarization layouts
    for name in names:
        assert load_variant(name).name == name


def test_variant_is_its_includes_plus_overrides() -> None:
    variant = load_variant("summarization/detailed-2shot-cot")
    spec = variant.spec
    assert (spec.preamble, spec.shots, spec.cot, spec.position) == ("detailed", 2, True, "both")
    chain = [path.name for path, _ in variant.files]
    assert chain == [
        "detailed-2shot-cot.yaml",
        "detailed-2shot.yaml",
        "detailed-0shot.yaml",
        "base-0shot.yaml",
        "_family.yaml",
    ]
    assert spec.description.startswith("Detailed rubric, two exemplars with rationales")


def test_harmless_family_reuses_the_helpful_layout_with_its_own_preambles() -> None:
    helpful = load_variant("dialogue_helpful/detailed-0shot").spec
    harmless = load_variant("dialogue_harmless/detailed-0shot").spec
    assert harmless.templates.candidates == helpful.templates.candidates
    assert harmless.templates.ending == helpful.templates.ending == "Preferred Response="
    assert "harmful" in harmless.preambles["detailed"]
    assert "harmful" not in helpful.preambles["detailed"]
    assert {e.id for e in harmless.exemplar_pool}.isdisjoint(e.id for e in helpful.exemplar_pool)


def test_list_filters_by_family_or_task_kind() -> None:
    assert all(n.startswith("instruction/") for n in list_variants("instruction"))
    dialogue = list_variants("dialogue")
    assert {n.split("/")[0] for n in dialogue} == {"dialogue_helpful", "dialogue_harmless"}
    assert list_variants("dialogue_harmless") == [n for n in dialogue if "harmless" in n]


def test_user_variant_by_path_includes_a_builtin_by_name(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.yaml", "include: summarization/detailed-0shot\nshots: 3\n")
    variant = load_variant(path)
    assert (variant.spec.preamble, variant.spec.shots) == ("detailed", 3)
    assert variant.name == str(path)


def test_extra_prompt_dirs_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "custom" / "terse.yaml", "include: summarization/base-0shot\nposition: fixed\n"
    )
    monkeypatch.setenv(PROMPTS_PATH_ENV, str(tmp_path))
    assert "custom/terse" in list_variants()
    assert load_variant("custom/terse").spec.position == "fixed"


def test_template_naming_a_missing_field_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.yaml",
        "include: summarization/base-0shot\n"
        "templates:\n  candidates: 'Summary 1: {{ response_one }}'\n",
    )
    error = load_error(path)
    assert error.source == str(path)
    assert error.field == "templates.candidates"
    assert "response_one" in error.message and "response_1" in error.message


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    family = write(
        tmp_path / "_family.yaml",
        "include: " + str(Path(load_variant("summarization/base-0shot").files[-1][0])) + "\n"
        "templates:\n  ending: '{{ ending_word }}='\n",
    )
    path = write(tmp_path / "v.yaml", "include: _family.yaml\nshots: 1\n")
    error = load_error(path)
    assert error.source == str(family)
    assert error.field == "templates.ending"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("include: summarization/no-such-variant\n", "include", "unknown variant"),
        ("include: summarization/base-0shot\npreamble: fancy\n", "preamble", "unknown preamble"),
        ("include: summarization/base-0shot\nshots: 7\n", "shots", "exemplar pool has 6"),
        ("include: summarization/base-0shot\nshots: -1\n", "shots", "greater than or equal"),
        ("include: summarization/base-0shot\npositon: fixed\n", "positon", "unknown key"),
        # YAML keeps the last of two equal keys, and pydantic takes true for 1 (issue: silent)
        ("include: summarization/base-0shot\nshots: 2\nshots: 0\n", "shots", "given twice"),
        ("include: summarization/base-0shot\nshots: true\n", "shots", "yes/no value"),
        ("include: summarization/base-0shot\nanswers: ['1', '1']\n", None, "distinct"),
        (
            "include: summarization/base-0shot\nself_consistency: {n: 4, temperature: 0.7}\n",
            None,
            "needs cot",
        ),
        (
            "include: summarization/base-0shot\ntemplates: {ending: '{{ 1 + }}'}\n",
            "templates.ending",
            "syntax",
        ),
        (
            "include: summarization/base-0shot\ntemplates: {ending: '{{ 1 // 0 }}'}\n",
            "templates.ending",
            "fails",
        ),
        ("include: nowhere.yaml\n", "include", "not found"),
        (
            "include: summarization/base-0shot\npreambles: {base: {file: gone.txt}}\n",
            "preambles.base",
            "not found",
        ),
    ],
)
def test_bad_variant_is_a_clear_load_time_error(
    tmp_path: Path, body: str, field: str | None, words: str
) -> None:
    path = write(tmp_path / "bad.yaml", body)
    error = load_error(path)
    assert error.source == str(path)
    assert error.field == field
    assert words in error.message


def test_unknown_variant_name_suggests_close_names() -> None:
    with pytest.raises(InputError, match="did you mean summarization/base-0shot"):
        load_variant("summarization/base-0shots")


def test_include_cycle_and_bad_yaml(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "include: b.yaml\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    assert "include cycle" in load_error(tmp_path / "a.yaml").message
    broken = write(tmp_path / "broken.yaml", "include: summarization/base-0shot\nshots: [1,\n")
    error = load_error(broken)
    assert error.line is not None and "invalid YAML" in error.message


def test_answers_must_be_single_distinct_tokens_of_the_labeler(
    tmp_path: Path, tiny_tokenizer
) -> None:
    words = write(
        tmp_path / "words.yaml",
        "include: summarization/base-0shot\nanswers: ['first summary', 'second summary']\n",
    )
    with pytest.raises(InputError) as caught:
        plan([PAIRS["summarization"]], load_variant(words), tokenizer=tiny_tokenizer)
    assert caught.value.source == str(words)
    assert caught.value.field == "answers"
    assert "not a single token" in caught.value.message


class SameTokenForDigits:
    """A stand-in tokenizer that maps every digit to the same token."""

    name_or_path = "digits-collapse"

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": [0 if ch.isdigit() else ord(ch) for ch in text]}


def test_answers_mapping_to_one_token_are_rejected() -> None:
    with pytest.raises(InputError, match="map to the same token"):
        plan([PAIRS["summarization"]], "summarization/base-0shot", tokenizer=SameTokenForDigits())


@pytest.mark.parametrize(
    "name",
    [
        "summarization/" + "é" * 50_000,  # too long for the file system
        "summarization/../summarization/base-0shot",  # a path out of and back into the root
        "summarization/../../prompts/summarization/base-0shot",
    ],
)
def test_a_variant_name_that_is_not_a_name_is_unknown(name):
    """(issue: a 50,000-character name failed with the file system's "File name too long" on an
    internal path; a name with '..' was resolved as a path)"""
    from labelbench.errors import InputError
    from labelbench.prompting.variants import load_variant

    with pytest.raises(InputError) as raised:
        load_variant(name)
    assert "unknown variant" in raised.value.message
    assert len(str(raised.value)) <= 2000


def test_an_error_line_is_cut_at_2000_characters():
    from labelbench.errors import InputError

    line = str(InputError("data.jsonl", "id " + "x" * 100_000 + " is bad", line=3))
    assert line.startswith("data.jsonl:3: id xxx") and len(line) <= 2000
    assert line.endswith("characters cut)")
