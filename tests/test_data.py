"""Loaders on the real releases, the generic column map, splits, filters and inspect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelbench.cli import app, run_app
from labelbench.data import ColumnMap, load_comparisons, load_prompts
from labelbench.data.inspect import summarize
from labelbench.data.select import HIGH_CONFIDENCE, Filters, apply_filters, sample, split_by_group

REAL_COUNTS = {
    "openai_tldr_comparisons/batch13.json": 1097,
    "openai_tldr_comparisons/cnndm0.json": 437,
    "anthropic_hh_rlhf/harmless-base_test.jsonl.gz": 2312,
    "pandalm/testset-v1.json": 999,
    "llmbar/LLMBar_Natural.json": 100,
    "llmbar/LLMBar_Adversarial_GPTInst.json": 92,
    "llmbar/LLMBar_Adversarial_GPTOut.json": 47,
    "llmbar/LLMBar_Adversarial_Manual.json": 46,
    "llmbar/LLMBar_Adversarial_Neighbor.json": 134,
    "llmbar/Processed_FairEval.json": 66,
    "llmbar/Processed_MT-Bench.json": 200,
}


@pytest.mark.parametrize("relative", sorted(REAL_COUNTS))
def test_inspect_counts_real_releases(relative: str, data_dir: Path, capsys) -> None:
    code = run_app(app, ["data", "inspect", str(data_dir / relative), "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert code == 0
    assert stats["comparisons"] == REAL_COUNTS[relative]
    assert stats["invalid_records"] == 0


def test_tldr_comparisons_fields(data_dir: Path) -> None:
    loaded = load_comparisons(data_dir / "openai_tldr_comparisons/batch13.json")
    stats = summarize(loaded)
    assert (stats["groups"], stats["annotators"]) == (905, 27)
    assert stats["label_balance"] == {
        "a_preferred": 624,
        "b_preferred": 473,
        "tie": 0,
        "unlabelled": 0,
    }
    assert stats["pairs_labelled_in_several_rows"] > 0  # repeats give a human-human ceiling
    first = loaded[0]
    assert first.group_id == "t3_4ne9lx" and first.task == "summarization"
    assert first.annotations[0].confidence == 3 and first.human_pref_a == 1.0
    assert first.meta["subreddit"] == "relationships"
    assert len({c.id for c in loaded}) == len(loaded)


def test_pandalm_three_annotators_and_ties(data_dir: Path) -> None:
    loaded = load_comparisons(data_dir / "pandalm/testset-v1.json")
    stats = summarize(loaded)
    assert stats["annotators"] == 3
    assert stats["annotations_per_comparison"] == {3: 999}
    assert stats["label_balance"]["tie"] > 0
    assert all(len(c.annotations) == 3 for c in loaded)


def test_hh_split_and_content_order(data_dir: Path) -> None:
    loaded = load_comparisons(data_dir / "anthropic_hh_rlhf/harmless-base_test.jsonl.gz")
    raw = [
        json.loads(line)
        for line in __import__("gzip").open(
            data_dir / "anthropic_hh_rlhf/harmless-base_test.jsonl.gz", "rt"
        )
    ]
    both = {c.meta["a_is"] for c in loaded}
    assert both == {"chosen", "rejected"}
    for comparison, record in zip(loaded, raw, strict=True):
        chosen = (
            comparison.response_a
            if comparison.meta["a_is"] == "chosen"
            else (comparison.response_b)
        )
        assert comparison.context.endswith("\n\nAssistant:")
        assert record["chosen"].startswith(comparison.context)
        assert record["chosen"][len(comparison.context) :].strip() == chosen
        assert comparison.human_pref_a == (1.0 if comparison.meta["a_is"] == "chosen" else 0.0)
        assert comparison.order == "content_hash"
    again = load_comparisons(data_dir / "anthropic_hh_rlhf/harmless-base_test.jsonl.gz")
    assert [c.response_a for c in again] == [c.response_a for c in loaded]


def test_tldr_posts_as_prompts(data_dir: Path) -> None:
    prompts = load_prompts(data_dir / "openai_tldr_posts/tldr_test.json")
    assert len(prompts) == 500
    assert all(p.reference for p in prompts)
    with pytest.raises(Exception, match="holds prompts"):
        load_comparisons(data_dir / "openai_tldr_posts/tldr_test.json")


def test_trl_prompt_only_files_are_prompts(tmp_path: Path) -> None:
    """(issue: a GRPO/RLOO prompt file, TRL's prompt-only format, was not accepted as prompts)"""
    import json

    from labelbench.errors import InputError

    rows = [
        {"prompt": "Write a haiku about rain.", "answer": "ignored"},
        {"prompt": [{"role": "user", "content": "How do I boil an egg?"}], "id": "q7"},
    ]
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = load_prompts(path)
    assert loaded.format == "trl-prompts"
    text, chat = list(loaded)
    assert (text.task, text.context) == ("instruction", "Write a haiku about rain.")
    assert text.id == text.group_id and len(text.id) == 16  # a hash of the prompt
    assert (chat.id, chat.task) == ("q7", "dialogue")
    assert chat.context.startswith("\n\nHuman: How do I boil an egg?")
    assert chat.context.endswith("Assistant:")
    with pytest.raises(InputError, match="holds prompts"):
        load_comparisons(path)
    # a prompt with a completion or a pair is not a prompt-only row
    path.write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    with pytest.raises(InputError, match="cannot detect the format"):
        load_prompts(path)
    assistant_last = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    path.write_text(json.dumps({"prompt": assistant_last}) + "\n")
    with pytest.raises(InputError, match="the last message is the assistant's"):
        load_prompts(path)
    path.write_text(json.dumps({"prompt": ""}) + "\n")
    with pytest.raises(InputError, match=r"prompt.*is empty"):
        load_prompts(path)


def test_high_confidence_filter_and_group_split(data_dir: Path) -> None:
    loaded = load_comparisons(data_dir / "openai_tldr_comparisons/batch13.json")
    kept, removed = apply_filters(loaded, Filters(confidence=list(HIGH_CONFIDENCE)))
    assert len(kept) + removed["confidence"] == 1097
    assert all(c.annotations[0].confidence in HIGH_CONFIDENCE for c in kept)
    splits = split_by_group(loaded, {"train": 0.8, "test": 0.2}, seed=3)
    train_groups = {c.group_id for c in splits["train"]}
    test_groups = {c.group_id for c in splits["test"]}
    assert not train_groups & test_groups
    assert len(splits["train"]) + len(splits["test"]) == 1097
    assert 0.7 < len(splits["train"]) / 1097 < 0.9
    assert split_by_group(loaded, {"train": 0.8, "test": 0.2}, seed=3) == splits


def _items(n: int):
    from labelbench.data import Annotation, Comparison

    return [
        Comparison(
            id=f"i{k}",
            group_id=f"g{k // 2}",
            task="instruction",
            context=f"c{k}",
            response_a="a" * (k + 1),
            response_b="b",
            annotations=(Annotation(pref_a=[1.0, 0.5, 0.0][k % 3]),),
        )
        for k in range(n)
    ]


def test_filters_on_small_table() -> None:
    items = _items(9)
    kept, removed = apply_filters(items, Filters(drop_ties=True, max_chars=9))
    # ties are k = 1, 4, 7; longer than 9 chars: context 2 + a (k+1) + b 1 > 9 -> k >= 6
    assert [c.id for c in kept] == ["i0", "i2", "i3", "i5"]
    assert removed == {"tie": 3, "max_chars": 2}


def test_sample_is_seeded_and_stable() -> None:
    items = _items(20)
    assert sample(items, 5, seed=1) == sample(list(reversed(items)), 5, seed=1)
    assert sample(items, 5, seed=1) != sample(items, 5, seed=2)
    assert len(sample(items, None)) == 20


def test_column_map_csv_parquet_and_saved_dataset(tmp_path: Path) -> None:
    import datasets
    import pandas as pd

    frame = pd.DataFrame(
        {"q": ["x", "y"], "r1": ["long answer", "a"], "r2": ["b", "other"], "w": [1, 0]}
    )
    columns = ColumnMap.parse("context=q,response_a=r1,response_b=r2,label=w")
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "saved"))
    for source in ("t.csv", "t.parquet", "saved"):
        loaded = load_comparisons(tmp_path / source, columns=columns)
        assert [c.human_pref_a for c in loaded] == [1.0, 0.5], source
        assert loaded[0].response_a == "long answer"


def test_trl_preference_detected_and_ordered_by_content(tmp_path: Path) -> None:
    path = tmp_path / "pref.jsonl"
    rows = [{"prompt": f"q{k}", "chosen": f"good {k}", "rejected": f"bad {k}"} for k in range(40)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    loaded = load_comparisons(path)
    assert loaded.format == "trl-preference"
    firsts = {c.meta["a_is"] for c in loaded}
    assert firsts == {"chosen", "rejected"}
    for c in loaded:
        good = c.response_a if c.meta["a_is"] == "chosen" else c.response_b
        assert good.startswith("good")


def test_hub_ids_go_through_datasets(monkeypatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(
            [
                {
                    "chosen": "\n\nHuman: a\n\nAssistant: yes",
                    "rejected": "\n\nHuman: a\n\nAssistant: no",
                }
            ]
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_comparisons("Anthropic/hh-rlhf", split="test")
    assert calls == [("Anthropic/hh-rlhf", None, "test")]
    assert loaded.format == "hh-rlhf" and len(loaded) == 1


def test_hub_offline_is_a_clear_error(monkeypatch) -> None:
    import datasets

    from labelbench.errors import InputError

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(InputError, match="offline, download the original files"):
        load_comparisons("openai/summarize_from_feedback", config="comparisons")


def test_pandalm_published_judges(data_dir: Path) -> None:
    from labelbench.data.judges import load_pandalm_judge

    gpt = load_pandalm_judge(data_dir / "pandalm/gpt-3.5-turbo-testset-v1.json")
    panda = load_pandalm_judge(data_dir / "pandalm/pandalm-7b-testset-v1.json")
    ids = {c.id for c in load_comparisons(data_dir / "pandalm/testset-v1.json")}
    assert set(gpt) == set(panda) == ids
    assert sum(v is None for v in gpt.values()) == 25  # the release's 'garbage' verdicts
    assert sum(v == 0.5 for v in gpt.values()) == 38
    assert sum(v == 0.5 for v in panda.values()) == 107
