"""Users' own data: column and label maps (on the command line and in run configs), ties kept,
prompt-less pairs, detected table shapes, conversational TRL data, hub and saved datasets."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from labelbench.cli import app, run_app
from labelbench.data import ColumnMap, load_comparisons
from labelbench.errors import InputError
from labelbench.rundir import REPORT_MD, RESULTS, SUMMARY, read_summary

WORD_ROWS = [  # (query, response 1, response 2, verdict): word labels, ties, empty queries
    ("Write a haiku about rain.", "Rain taps the window, soft and grey", "rain", "model1"),
    ("", "A short poem about the sea.", "The sea is wet.", "TIE"),
    ("Name a fruit.", "apple", "a car", "model1"),
    ("", "Hello there, how are you?", "hi", "model2"),
    ("Add 2 and 3.", "5", "23", "model1"),
    ("Translate 'bonjour'.", "hello", "good night", "tie"),
    ("", "Two plus two is four.", "Two plus two is five.", "Tie"),
    ("Give a colour.", "blue", "seven", "model2"),
]
WORD_MAP = {
    "context": "query",
    "response_a": "response 1",
    "response_b": "response 2",
    "label": "verdict",
    "labels": {"model1": "A", "model2": "B", "tie": "tie"},
    "task": "instruction",
}


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- labelbench run


def test_csv_with_word_labels_ties_and_empty_contexts_runs_from_a_config(
    tiny_lm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The acceptance test: config only (no converter), a tiny model, the report counts the
    file's ties and gives the tie-aware agreement beside accuracy."""
    data = write_csv(
        tmp_path / "mine.csv", ["query", "response 1", "response 2", "verdict"], WORD_ROWS
    )
    ties = sum(row[3].lower() == "tie" for row in WORD_ROWS)
    config = tmp_path / "mine.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            datasets:
              - name: mine
                path: {data}
                format: columns
                map:
                  context: query
                  response_a: response 1
                  response_b: response 2
                  label: verdict
                  labels: {{model1: A, model2: B, tie: tie}}
            labelers:
              - name: {tiny_lm_dir}
            variants: [instruction/base-0shot]
            output_dir: {tmp_path / "run"}
            analysis: {{bootstrap: 20}}
            """
        )
    )
    code = run_app(app, ["run", str(config), "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    summary = read_summary(tmp_path / "run" / SUMMARY)
    entry = summary.datasets["mine"]
    assert entry.n_items == len(WORD_ROWS)
    assert entry.human_ties == ties == 3
    cell = entry.labeler_cells()[0]
    assert cell.human_ties == ties
    assert cell.tie_agreement is not None and cell.tie_agreement.n == ties
    assert cell.alignment.accuracy.n == len(WORD_ROWS) - ties
    report = (tmp_path / "run" / REPORT_MD).read_text()
    assert f"{len(WORD_ROWS)} items, {ties} human ties" in report
    assert "| tie agreement |" in report
    # the empty queries were labelled without an instruction block
    import pandas as pd

    results = pd.read_parquet(tmp_path / "run" / RESULTS)
    assert results["ai_pref_a"].notna().all()


def test_run_config_map_errors_name_the_line(tmp_path: Path) -> None:
    from labelbench.config import parse_config

    def error(dataset: str) -> InputError:
        text = (
            f"datasets:\n  - {dataset}\nlabelers: [{{name: x/y}}]\nvariants: [v]\noutput_dir: o\n"
        )
        with pytest.raises(InputError) as caught:
            parse_config(
                text,
                tmp_path / "c.yaml",
                variants=lambda: ["v"],
                builtins=lambda: [],
                formats=lambda: None,
            )
        return caught.value

    missing = error("{name: a, path: a.csv, format: columns}")
    assert missing.line == 2 and "needs a map" in missing.message
    bad_key = error("{name: a, path: a.csv, map: {context: q, answer: r}}")
    assert bad_key.field == "datasets[0].map.answer"
    bad_target = error(
        "{name: a, path: a.csv, map: {response_a: x, response_b: y, label: w, "
        "labels: {good: maybe}}}"
    )
    assert "not A, B, tie or a probability" in bad_target.message
    other_format = error("{name: a, path: a.csv, format: pandalm, map: 'response_a=x'}")
    assert "format 'columns'" in other_format.message


def test_run_config_map_text_equals_the_mapping(tmp_path: Path) -> None:
    from labelbench.config import DatasetSpec

    text = DatasetSpec(
        name="a",
        path="a.csv",
        map="context=q,response_a=r1,response_b=r2,label=w,labels=x:A;y:B;z:tie",
    )
    mapping = DatasetSpec(
        name="a",
        path="a.csv",
        map={
            "context": "q",
            "response_a": "r1",
            "response_b": "r2",
            "label": "w",
            "labels": {"x": "A", "y": "B", "z": "tie"},
        },
    )
    assert text == mapping
    assert ColumnMap.parse(text.map.to_spec()) == text.map
    # the saved config of a run reads back
    dumped = text.model_dump(mode="json", exclude_none=True)
    assert DatasetSpec.model_validate(dumped) == text


# ---------------------------------------------------------------------------- label maps


@pytest.mark.parametrize(
    ("values", "labels", "expected"),
    [
        (["model1", "model2", "TIE"], "model1:A;model2:B;tie:tie", [1.0, 0.0, 0.5]),
        (["A", "b", "Tie"], None, [1.0, 0.0, 0.5]),  # label_kind=letter below
        (["response_a", "response_b", "tie"], "response_a:A;response_b:B;tie:tie", [1.0, 0.0, 0.5]),
        ([1, 2, 0], None, [1.0, 0.0, 0.5]),  # the default: 1 or 2, 0 = tie
        (["1", "2.0", 0.0], None, [1.0, 0.0, 0.5]),
        ([0, 1, 1], "0:A;1:B", [1.0, 0.0, 0.0]),
        ([-1, 1, 0], "-1:A;1:B;0:tie", [1.0, 0.0, 0.5]),
        ([1, 0, 0.5], "1:1;0:0;0.5:0.5", [1.0, 0.0, 0.5]),
    ],
)
def test_label_maps(tmp_path: Path, values: list, labels: str | None, expected: list) -> None:
    rows = [
        {"q": f"q{k}", "r1": f"first {k}", "r2": f"second {k}", "w": value}
        for k, value in enumerate(values)
    ]
    spec = "context=q,response_a=r1,response_b=r2,label=w"
    if labels is not None:
        spec += f",labels={labels}"
    elif isinstance(values[0], str) and not values[0].isdigit():
        spec += ",label_kind=letter"
    loaded = load_comparisons(write_jsonl(tmp_path / "t.jsonl", rows), columns=spec)
    assert [c.human_pref_a for c in loaded] == expected


def test_probability_of_a_and_per_annotator_labels(tmp_path: Path) -> None:
    rows = [
        {"q": "q0", "r1": "x", "r2": "y", "p": 0.8, "votes": ["A", "A", "B"], "j1": 1, "j2": 0},
        {"q": "q1", "r1": "z", "r2": "w", "p": "0.25", "votes": ["tie", "B"], "j1": 0, "j2": 0},
    ]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    prob = load_comparisons(
        path, columns="context=q,response_a=r1,response_b=r2,label=p,label_kind=prob"
    )
    assert [c.human_pref_a for c in prob] == [0.8, 0.25]
    lists = load_comparisons(
        path, columns="context=q,response_a=r1,response_b=r2,label=votes,label_kind=letter"
    )
    assert [[a.pref_a for a in c.annotations] for c in lists] == [[1, 1, 0], [0.5, 0]]
    columns = load_comparisons(
        path, columns="context=q,response_a=r1,response_b=r2,label=j1;j2,labels=1:A;0:B"
    )
    assert [[(a.annotator, a.pref_a) for a in c.annotations] for c in columns] == [
        [("j1", 1.0), ("j2", 0.0)],
        [("j1", 0.0), ("j2", 0.0)],
    ]


def test_unknown_label_value_names_the_value_and_the_line(tmp_path: Path, capsys) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        ["q", "r1", "r2", "w"],
        [("a", "x", "y", "model1"), ("b", "x", "y", "model3")],
    )
    code = run_app(
        app,
        [
            "data",
            "inspect",
            str(path),
            "--map",
            "context=q,response_a=r1,response_b=r2,label=w,labels=model1:A;model2:B",
        ],
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{path}:3: field 'w': label 'model3'" in err


# ---------------------------------------------------------------------------- prompt-less pairs


def test_empty_context_is_valid_only_where_the_task_allows_it(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        ["q", "r1", "r2", "w"],
        [("", "one", "two", "1"), ("   ", "three", "four", "2")],
    )
    loaded = load_comparisons(path, columns="context=q,response_a=r1,response_b=r2,label=w")
    assert [c.context for c in loaded] == ["", ""]
    assert loaded[0].group_id != loaded[1].group_id  # no shared empty context as one group
    no_column = load_comparisons(path, columns="response_a=r1,response_b=r2,label=w")
    assert [c.task for c in no_column] == ["instruction", "instruction"]
    with pytest.raises(InputError, match=r"t.csv:2: field 'q': is empty \(task 'summarization'"):
        load_comparisons(
            path, columns="context=q,response_a=r1,response_b=r2,label=w,task=summarization"
        )
    with pytest.raises(InputError, match="needs a context column"):
        load_comparisons(path, columns="response_a=r1,response_b=r2,label=w,task=dialogue")


def test_instruction_templates_leave_out_an_empty_instruction() -> None:
    from labelbench.data import Annotation, Comparison
    from labelbench.prompting import describe_plan, list_variants, load_variant, plan

    pair = Comparison(
        id="p",
        group_id="g",
        task="instruction",
        context="Say hi.",
        response_a="hi",
        response_b="bye",
        annotations=(Annotation(pref_a=1.0),),
    )
    bare = pair.model_copy(update={"context": ""})
    names = [n for n in list_variants() if n.startswith("instruction/")]
    assert names
    for name in names:
        variant = load_variant(name)
        with_context = describe_plan(plan([pair], variant))
        without = describe_plan(plan([bare], variant))
        expected = with_context.replace("Instruction:\nSay hi.\n\n", "")
        # the plan header counts characters: compare the texts, not the counts
        strip = lambda text: "\n".join(  # noqa: E731
            line for line in text.splitlines() if not line.startswith("=====")
        )
        assert strip(without) == strip(expected), name
        assert "\n\n\n" not in without


# ---------------------------------------------------------------------------- detected shapes


def test_detected_shapes_with_a_label_column(tmp_path: Path) -> None:
    alpaca = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"instruction": "Say hi.", "output_1": "hi", "output_2": "bye", "preference": 2},
            {"instruction": "Count.", "output_1": "1 2 3", "output_2": "3", "preference": 1.5},
        ],
    )
    loaded = load_comparisons(alpaca)
    assert loaded.format == "columns" and loaded.columns.context == "instruction"
    assert [c.human_pref_a for c in loaded] == [0.0, 0.5]
    panda_like = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"question": "Say hi.", "response1": "hi", "response2": "bye", "label": "response1"},
        ],
    )
    assert [c.human_pref_a for c in load_comparisons(panda_like)] == [1.0]
    arena = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {"prompt": "Say hi.", "response_a": "hi", "response_b": "bye", "winner": "model_b"},
            {"prompt": "Say yo.", "response_a": "yo", "response_b": "bye", "winner": "tie"},
        ],
    )
    assert [c.human_pref_a for c in load_comparisons(arena)] == [0.0, 0.5]
    # a bare 0/1 is ambiguous for A/B columns: an error that asks for a label map
    ambiguous = write_jsonl(
        tmp_path / "z.jsonl",
        [
            {"prompt": "Say hi.", "response_a": "hi", "response_b": "bye", "winner": 0},
        ],
    )
    with pytest.raises(InputError, match=r"z.jsonl:1: field 'winner': label 0 .*labels="):
        load_comparisons(ambiguous)


def test_mt_bench_human_judgments(tmp_path: Path) -> None:
    def conversation(answer_1: str, answer_2: str) -> list[dict]:
        return [
            {"role": "user", "content": "Plan a trip."},
            {"role": "assistant", "content": answer_1},
            {"role": "user", "content": "Make it shorter."},
            {"role": "assistant", "content": answer_2},
        ]

    row = {
        "question_id": 81,
        "model_a": "alpaca-13b",
        "model_b": "gpt-4",
        "winner": "model_b",
        "judge": "expert_1",
        "conversation_a": conversation("Go to Rome.", "Rome."),
        "conversation_b": conversation("Visit Hawaii for a week.", "Hawaii."),
        "turn": 1,
    }
    path = write_jsonl(
        tmp_path / "mt.jsonl",
        [row, {**row, "turn": 2, "winner": "tie (bothbad)"}, {**row, "winner": "model_a"}],
    )
    loaded = load_comparisons(path)
    assert loaded.format == "mt-bench-human"
    first, second, third = loaded
    assert first.context == "\n\nHuman: Plan a trip.\n\nAssistant:"
    assert (first.response_a, first.response_b) == ("Go to Rome.", "Visit Hawaii for a week.")
    assert first.human_pref_a == 0.0 and third.human_pref_a == 1.0
    assert first.annotations[0].annotator == "expert_1" and first.group_id == "81"
    assert not first.meta["diverges_early"]
    # turn 2: each model's own first answer comes with its reply: flagged, and a tie
    assert second.is_tie and second.meta["diverges_early"]
    assert second.response_a == "Go to Rome.\n\nHuman: Make it shorter.\n\nAssistant: Rome."


def test_conversational_trl_preferences_saved_with_datasets(tmp_path: Path) -> None:
    import datasets

    def user(text: str) -> dict:
        return {"role": "user", "content": text}

    def bot(text: str) -> dict:
        return {"role": "assistant", "content": text}

    explicit = datasets.Dataset.from_list(
        [
            {
                "prompt": [user(f"Question {k}?")],
                "chosen": [bot(f"good {k}")],
                "rejected": [bot(f"bad {k}")],
            }
            for k in range(6)
        ]
    )
    implicit = datasets.Dataset.from_list(
        [
            {
                "chosen": [user("Hi"), bot("Hello!"), user(f"Help {k}"), bot(f"good {k}")],
                "rejected": [user("Hi"), bot("Hello!"), user(f"Help {k}"), bot(f"bad {k}")],
            }
            for k in range(6)
        ]
    )
    datasets.DatasetDict({"train": explicit, "test": explicit}).save_to_disk(tmp_path / "dd")
    implicit.save_to_disk(tmp_path / "implicit")
    loaded = load_comparisons(tmp_path / "dd", split="test")
    assert loaded.format == "trl-preference" and len(loaded) == 6
    assert {c.meta["a_is"] for c in loaded} == {"chosen", "rejected"}
    for item in loaded:
        good = item.response_a if item.meta["a_is"] == "chosen" else item.response_b
        assert good.startswith("good") and item.task == "dialogue"
        assert item.context.startswith("\n\nHuman: Question") and item.context.endswith(
            "\n\nAssistant:"
        )
        assert item.human_pref_a == (1.0 if item.meta["a_is"] == "chosen" else 0.0)
    turns = load_comparisons(tmp_path / "implicit")
    assert turns.format == "trl-preference"
    assert turns[0].context == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help 0\n\nAssistant:"
    assert sorted((turns[0].response_a, turns[0].response_b)) == ["bad 0", "good 0"]
    with pytest.raises(InputError, match="a split is needed"):
        load_comparisons(tmp_path / "dd")


def test_inspect_on_an_undetectable_file_suggests_a_map(tmp_path: Path, capsys) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [{"query": "Say hi.", "answer_x": "hi", "answer_y": "bye", "verdict": "x"}],
    )
    code = run_app(app, ["data", "inspect", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "columns: query, answer_x, answer_y, verdict" in err
    assert "--map 'context=query,response_a=answer_x,response_b=answer_y,label=verdict," in err


def test_empty_responses_in_a_mapped_table_are_loaded_counted_and_flagged(
    tmp_path: Path, capsys
) -> None:
    """Issue 25 item 15: a public human-judgment set (dataset, prompt, two model outputs and a
    ``human`` column of model1/model2/TIE) has rows whose response is empty."""
    rows = [
        {
            "dataset": "helpful",
            "instruction": "Say hi.",
            "out1": "hi",
            "out2": "bye",
            "human": "model1",
        },
        {
            "dataset": "helpful",
            "instruction": "Count.",
            "out1": "",
            "out2": "1 2 3",
            "human": "model2",
        },
        {"dataset": "harmless", "instruction": "Stop.", "out1": "ok", "out2": "", "human": "TIE"},
    ]
    path = write_jsonl(tmp_path / "judged.jsonl", rows)
    code = run_app(app, ["data", "inspect", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "label=human," in err and "label=dataset" not in err
    assert "response_a=out1,response_b=out2" in err
    spec = "context=instruction,response_a=out1,response_b=out2,label=human"
    spec += ",labels=model1:A;model2:B;TIE:tie"
    loaded = load_comparisons(path, columns=ColumnMap.parse(spec))
    assert len(loaded) == 3 and not loaded.invalid
    assert [bool(c.meta.get("empty_response")) for c in loaded] == [False, True, True]
    assert run_app(app, ["data", "inspect", str(path), "--map", spec, "--json"]) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["empty_responses"] == 2
    assert "2 comparison(s) with an empty response, kept" in shown.err


# ---------------------------------------------------------------------------- hub and folders


def test_hub_dataset_and_saved_folder_in_a_run_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hf:owner/name`` with split and config name goes through ``datasets.load_dataset``
    (offline here: it serves a saved folder); a saved DatasetDict folder takes the split."""
    import datasets

    from labelbench.benchmark import prepare
    from labelbench.config import parse_config

    table = datasets.Dataset.from_list(
        [
            {"q": f"q{k}", "r1": f"a{k}", "r2": f"b{k}", "w": ["A", "B", "tie"][k % 3]}
            for k in range(6)
        ]
    )
    datasets.DatasetDict({"train": table}).save_to_disk(tmp_path / "saved")
    calls = []

    def offline_hub(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.load_from_disk(str(tmp_path / "saved"))[split]

    monkeypatch.setattr(datasets, "load_dataset", offline_hub)
    text = f"""\
        datasets:
          - name: hub
            path: hf:someone/prefs
            split: train
            hub_config: default
            map: context=q,response_a=r1,response_b=r2,label=w,label_kind=letter
          - name: folder
            path: {tmp_path / "saved"}
            split: train
            map: {{context: q, response_a: r1, response_b: r2, label: w, label_kind: letter}}
        labelers: [{{name: x/y}}]
        variants: [instruction/base-0shot]
        output_dir: {tmp_path / "out"}
    """
    config = parse_config(textwrap.dedent(text), tmp_path / "c.yaml")
    hub, folder = prepare(config, None)
    assert calls == [("someone/prefs", "default", "train")]
    assert [c.human_pref_a for c in hub.items] == [c.human_pref_a for c in folder.items]
    assert sorted(c.human_pref_a for c in hub.items) == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]


# ---------------------------------------------------------------------------- the tie figure


def test_tie_agreement_counts_unsure_labels_on_human_ties() -> None:
    from labelbench.metrics import ClusterBootstrap, tie_agreement

    human = np.array([0.5, 0.5, 0.5, 0.5, 1.0, 0.0])
    ai = np.array([0.55, 0.9, 0.45, np.nan, 0.5, 0.5])
    boot = ClusterBootstrap(np.arange(6), n_boot=50, seed=0, level=0.95)
    estimate = tie_agreement(boot, ai, human)
    assert estimate is not None and estimate.n == 3  # the unscored tie is left out
    assert estimate.value == pytest.approx(2 / 3)
    assert tie_agreement(boot, ai, np.ones(6)) is None


def test_a_label_value_mapped_twice_is_an_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="label value 'model1' is mapped twice"):
        ColumnMap(
            context="q",
            response_a="a",
            response_b="b",
            label="v",
            labels="model1:A;model2:B;tie:tie;model1:B",
        )
