"""``labelbench prompts list | show | render``: what a user sees; one-line errors, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_prompt_golden import GOLDEN

from labelbench.cli import app, run_app


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_app(app, ["prompts", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def instruction_file(tmp_path: Path) -> Path:
    """A small invented file in the LLMBar layout (input, output_1, output_2, label)."""
    records = [
        {
            "input": "Name a fruit that is yellow.",
            "output_1": "A banana.",
            "output_2": "A brick.",
            "label": 1,
        },
        {
            "input": "Sort these numbers from smallest to largest.\n12, 3, 7",
            "output_1": "12, 7, 3",
            "output_2": "3, 7, 12",
            "label": 2,
        },
    ]
    path = tmp_path / "instructions.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_list_shows_the_required_grid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list"], capsys)
    assert code == 0
    for family in ["summarization", "dialogue_helpful", "dialogue_harmless"]:
        for preamble in ["base", "detailed"]:
            for shots in ["0shot", "2shot"]:
                for cot in ["", "-cot"]:
                    assert f"{family}/{preamble}-{shots}{cot} " in out
        assert f"{family}/detailed-0shot-cot-sc4-t0.7" in out
    assert "n=4 t=0.7 k=40" in out


def test_list_filters_by_task(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list", "--task", "instruction"], capsys)
    assert code == 0 and "instruction/base-0shot" in out and "summarization/" not in out


def test_show_prints_the_include_chain_and_templates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["show", "summarization/detailed-2shot-cot"], capsys)
    assert code == 0
    assert "detailed-2shot.yaml" in out and "_family.yaml" in out
    assert "cot: True" in out and "shots: 2" in out
    assert "----- templates.ending -----\nPreferred Summary=" in out
    assert "Coverage:" in out


def test_render_prints_every_step_and_both_orders(
    instruction_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "render",
        "instruction/detailed-0shot-cot",
        "--data",
        str(instruction_file),
        "--index",
        "1",
    ]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert out.count("step 1: generate a rationale") == 2
    assert out.count("step 2: score answers 1/2 after the rationale") == 2
    assert "| order AB |" in out and "| order BA |" in out
    assert out.count("{step 1 text}{rationale}\nPreferred Response=") == 2
    assert out.count("Rationale:\n=====") == 2
    assert "Response 1: 12, 7, 3\nResponse 2: 3, 7, 12" in out
    assert "Response 1: 3, 7, 12\nResponse 2: 12, 7, 3" in out


def test_render_of_the_golden_pair_matches_its_golden_text(
    instruction_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["render", "instruction/base-0shot", "--data", str(instruction_file), "--index", "1"],
        capsys,
    )
    assert code == 0
    golden = (GOLDEN / "instruction" / "base-0shot.txt").read_text(encoding="utf-8")
    body = lambda text: [line for line in text.splitlines() if not line.startswith("=====")]  # noqa: E731
    assert body(out) == body(golden)


def test_render_with_a_model_applies_its_chat_template_and_budget(
    instruction_file: Path, tiny_lm_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_prompt_golden import CHAT_TEMPLATE
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(tiny_lm_dir)
    args = [
        "render",
        "instruction/base-0shot",
        "--data",
        str(instruction_file),
        "--model",
        str(tiny_lm_dir),
    ]
    code, out, err = run([*args, "--chat", "--max-tokens", "4000"], capsys)
    assert code == 0, err
    assert (
        out.count("<|user|>\n") == 2
        and out.count("<|end|>\n<|assistant|>\nPreferred Response=") == 2
    )
    code, _, err = run([*args, "--max-tokens", "20"], capsys)
    assert code == 2 and "even with its context removed" in err


def test_render_reads_your_own_table_with_a_map(tmp_path: Path, capsys) -> None:
    """A table whose columns are not detected: the load error says to pass --map (issue: render
    had no --map, so the advice ended in "No such option: --map")."""
    table = tmp_path / "mine.csv"
    table.write_text("q,a1,a2,who\nName a fruit.,apple,a car,1\n", encoding="utf-8")
    args = ["render", "instruction/base-0shot", "--data", str(table)]
    code, _, err = run(args, capsys)
    assert code == 2 and "--map" in err
    code, out, err = run(
        [*args, "--map", "context=q,response_a=a1,response_b=a2,label=who"], capsys
    )
    assert code == 0, err
    assert "Name a fruit." in out and "apple" in out and "a car" in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["render", "instruction/no-such", "--data", "{data}"], "unknown variant"),
        (["render", "instruction/base-0shot", "--data", "{data}", "--index", "9"], "out of range"),
        (["render", "summarization/base-0shot", "--data", "{data}"], "item, but variant"),
        (
            ["render", "instruction/base-0shot", "--data", "{data}", "--chat"],
            "needs the labeler's tokenizer",
        ),
        (["show", "summarization/base-0shots"], "did you mean summarization/base-0shot"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    args: list[str], words: str, instruction_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([a.replace("{data}", str(instruction_file)) for a in args], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    ("option", "value"), [("--max-tokens", "-5"), ("--max-tokens", "0"), ("--index", "-1")]
)
def test_render_refuses_a_count_out_of_range_as_a_usage_error(
    option: str, value: str, instruction_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-tokens -5 (issue: accepted, then 'does not fit in -5 even with its context
    removed'); the bound is the option's own, so it fails before anything is loaded."""
    args = ["render", "instruction/base-0shot", "--data", str(instruction_file), option, value]
    code = run_app(app, ["prompts", *args], prog_name="labelbench")
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err + out
    error, hint = err.strip().splitlines()
    assert error.startswith("error: labelbench prompts render: Invalid value for")
    assert f"'{option}'" in error
    assert hint == "Try 'labelbench prompts render --help' for help."


def test_render_with_a_model_uses_the_runs_chat_mode_and_says_so(
    instruction_file: Path, tiny_lm_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(issue 27: without --chat the chat template was left out even with --model, so the
    prompt shown was not the one a run sends)"""
    from test_prompt_golden import CHAT_TEMPLATE
    from transformers import AutoTokenizer

    args = ["render", "instruction/base-0shot", "--data", str(instruction_file)]
    model = ["--model", str(tiny_lm_dir)]
    code, out, err = run([*args, *model], capsys)  # no chat template: raw, and why
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("===== raw text, no chat template (the default a run uses for ")
    assert "it has no chat template); comparison llmbar-" in first
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(tiny_lm_dir)
    code, out, err = run([*args, *model], capsys)
    assert code == 0, err
    assert out.startswith("===== chat template on (the default a run uses for ")
    assert out.count("<|user|>\n") == 2  # both orders, as a run sends them
    code, out, err = run([*args, *model, "--no-chat"], capsys)
    assert code == 0, err
    assert out.startswith("===== raw text, no chat template (--no-chat)")
    assert "<|user|>" not in out
    code, out, _ = run(args, capsys)
    assert out.startswith("===== raw text, no chat template (no --model, so no chat template)")


def test_render_selects_an_item_by_id(
    instruction_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["render", "instruction/base-0shot", "--data", str(instruction_file)]
    code, by_index, err = run([*args, "--index", "1"], capsys)
    assert code == 0, err
    assert "12, 7, 3" in by_index
    second = by_index.splitlines()[0].split("comparison ")[1].split(" ")[0]
    assert f"| item {second} |" in by_index
    code, by_id, err = run([*args, "--id", second], capsys)
    assert code == 0, err
    assert by_id == by_index
    code, first, _ = run([*args, "--index", "0"], capsys)
    assert "A banana." in first and second not in first
    code, _, err = run([*args, "--id", "nope"], capsys)
    assert code == 2 and "--id nope: no comparison with this id" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run([*args, "--id", second, "--index", "1"], capsys)
    assert code == 2 and "not both" in err
