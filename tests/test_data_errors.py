"""Every documented input error: one stderr line naming file, line (or record) and field; exit 2."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from labelbench.cli import app, run_app

TLDR = {
    "info": {"id": "t3_x", "post": "A post about a dog.", "title": "Dog", "subreddit": "pets"},
    "summaries": [{"text": " dog story", "policy": "ref"}, {"text": " a dog", "policy": "sup"}],
    "choice": 0,
    "worker": "w1",
    "split": "valid2",
    "extra": {"confidence": 8},
}
HH = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go"}
PANDA = {
    "idx": 0,
    "instruction": "Say hi.",
    "input": "",
    "response1": "hi",
    "response2": "hello",
    "annotator1": 1,
    "annotator2": 0,
    "annotator3": 2,
}
LLMBAR = {"input": "Say hi.", "output_1": "hi", "output_2": "bye", "label": 1}
POST = {"instruction_id": "t3_y", "instruction": "A post.", "title": "T", "subreddit": "s"}


def with_changes(base: dict, **changes) -> dict:
    record = json.loads(json.dumps(base))
    for dotted, value in changes.items():
        target = record
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return record


def jsonl(*records: dict | str) -> bytes:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return ("\n".join(lines) + "\n").encode()


def array(*records) -> bytes:
    return json.dumps(list(records), indent=1).encode()


# name -> (file name, content, extra CLI args, expected place, expected field, message part)
CASES = {
    "truncated line": (
        "a.jsonl",
        jsonl(TLDR, json.dumps(TLDR)[:40]),
        [],
        ":2:",
        None,
        "malformed JSON",
    ),
    "line not an object": ("a.jsonl", jsonl(TLDR, "[1, 2]"), [], ":2:", None, "JSON object"),
    "missing choice": (
        "a.jsonl",
        jsonl(TLDR, with_changes(TLDR, choice=...)),
        [],
        ":2:",
        "choice",
        "missing",
    ),
    "choice out of range": (
        "a.jsonl",
        jsonl(with_changes(TLDR, choice=2)),
        [],
        ":1:",
        "choice",
        "out of range",
    ),
    "choice mistyped": (
        "a.jsonl",
        jsonl(with_changes(TLDR, choice="zero")),
        [],
        ":1:",
        "choice",
        "expected an integer",
    ),
    "three summaries": (
        "a.jsonl",
        jsonl(with_changes(TLDR, summaries=[{"text": "a"}] * 3)),
        [],
        ":1:",
        "summaries",
        "exactly two",
    ),
    "summary text mistyped": (
        "a.jsonl",
        jsonl(TLDR, TLDR, with_changes(TLDR, summaries=[{"text": "a"}, {"text": 7}])),
        [],
        ":3:",
        "summaries[1].text",
        "expected text",
    ),
    "confidence out of range": (
        "a.jsonl",
        jsonl(with_changes(TLDR, extra__confidence=12)),
        [],
        ":1:",
        "extra.confidence",
        "out of range",
    ),
    "post missing": (
        "a.jsonl",
        jsonl(with_changes(TLDR, info__post=...)),
        [],
        ":1:",
        "info.post",
        "missing",
    ),
    "invalid utf-8": (
        "a.jsonl",
        jsonl(TLDR) + b'{"info": "\xff\xfe"}\n',
        [],
        ":2:",
        None,
        "invalid UTF-8",
    ),
    "hh identical": (
        "h.jsonl",
        jsonl(HH, {"chosen": "x", "rejected": "x"}),
        [],
        ":2:",
        "rejected",
        "identical",
    ),
    "hh no assistant turn": (
        "h.jsonl",
        jsonl(HH, {"chosen": "Human: a", "rejected": "Human: b"}),
        [],
        ":2:",
        "chosen",
        "no Assistant turn",
    ),
    "hh null": (
        "h.jsonl",
        jsonl(HH, with_changes(HH, rejected=None)),
        [],
        ":2:",
        "rejected",
        "null",
    ),
    "hh gz truncated line": (
        "h.jsonl.gz",
        gzip.compress(jsonl(HH)[:30]),
        [],
        ":1:",
        None,
        "malformed JSON",
    ),
    "gz corrupt": ("h.jsonl.gz", b"not gzip at all", [], "", None, "cannot read file"),
    "pandalm annotator out of range": (
        "p.json",
        array(PANDA, with_changes(PANDA, annotator2=5)),
        [],
        " record 1:",
        "annotator2",
        "out of range",
    ),
    "pandalm response missing": (
        "p.json",
        array(with_changes(PANDA, response2=...)),
        [],
        " record 0:",
        "response2",
        "missing",
    ),
    "llmbar label out of range": (
        "l.json",
        array(LLMBAR, LLMBAR, with_changes(LLMBAR, label=3)),
        [],
        " record 2:",
        "label",
        "out of range",
    ),
    "llmbar output mistyped": (
        "l.json",
        array(with_changes(LLMBAR, output_1=["hi"])),
        [],
        " record 0:",
        "output_1",
        "expected text",
    ),
    "json array truncated": (
        "l.json",
        array(LLMBAR, LLMBAR)[:-20],
        [],
        ":",
        None,
        "malformed JSON",
    ),
    "array of non-objects": ("l.json", array(LLMBAR, 5), [], " record 1:", None, "JSON object"),
    "unknown format": ("u.jsonl", jsonl({"foo": 1}), [], ":1:", None, "cannot detect the format"),
    "unknown format name": (
        "l.json",
        array(LLMBAR),
        ["--format", "bogus"],
        " record 0:",
        None,
        "unknown format 'bogus'",
    ),
    "empty file": ("e.jsonl", b"\n\n", [], "", None, "no records"),
    "posts missing id": (
        "t.jsonl",
        jsonl(POST, with_changes(POST, instruction_id=...)),
        [],
        ":2:",
        "instruction_id",
        "missing",
    ),
    "csv both responses empty": (
        "c.csv",
        b"prompt,r1,r2,winner\nq,a,b,1\nq,,,2\n",
        ["--map", "context=prompt,response_a=r1,response_b=r2,label=winner"],
        ":3:",
        "r1",
        "is empty, and so is the other response",
    ),
    "csv prob label out of range": (
        "c.csv",
        b"prompt,r1,r2,p\nq,a,b,1.5\n",
        ["--map", "context=prompt,response_a=r1,response_b=r2,label=p,label_kind=prob"],
        ":2:",
        "p",
        "out of range",
    ),
    "csv letter label out of range": (
        "c.csv",
        b"prompt,r1,r2,w\nq,a,b,C\n",
        ["--map", "context=prompt,response_a=r1,response_b=r2,label=w,label_kind=letter"],
        ":2:",
        "w",
        "out of range",
    ),
    "csv too many values": (
        "c.csv",
        b"prompt,r1,r2,w\nq,a,b,1,extra\n",
        ["--map", "context=prompt,response_a=r1,response_b=r2,label=w"],
        ":2:",
        None,
        "more values",
    ),
    "csv missing column": (
        "c.csv",
        b"prompt,r1,r2\nq,a,b\n",
        ["--map", "context=prompt,response_a=r1,response_b=r2,label=w"],
        ":2:",
        "w",
        "missing",
    ),
    "map unknown key": (
        "c.csv",
        b"prompt,r1\nq,a\n",
        ["--map", "context=prompt,answer=r1"],
        "",
        "answer",
        "unknown key",
    ),
    "map incomplete": (
        "c.csv",
        b"prompt,r1\nq,a\n",
        ["--map", "context=prompt,response_a=r1"],
        ":2:",
        "--map",
        "map response_a",
    ),
    "trl preference both replies empty": (
        "t.jsonl",
        jsonl({"prompt": "q", "chosen": " ", "rejected": ""}),
        [],
        ":1:",
        "chosen",
        "is empty, and so is the other response",
    ),
    "prompts given as comparisons": (
        "t.jsonl",
        jsonl(POST),
        ["--format", "hh-rlhf"],
        ":1:",
        "chosen",
        "missing",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_with_one_line(case: str, tmp_path: Path, capsys) -> None:
    name, content, args, place, field, message = CASES[case]
    path = tmp_path / name
    path.write_bytes(content)
    code = run_app(app, ["data", "inspect", str(path), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert f"{path}{place}" in lines[0] or lines[0].startswith(
        ("error: --map:", "error: --format:")
    )
    if field is not None:
        assert f"field '{field}'" in lines[0]
    assert message in lines[0]


def test_missing_file(tmp_path: Path, capsys) -> None:
    code = run_app(app, ["data", "inspect", str(tmp_path / "nope.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.jsonl" in err and "no such file" in err


def test_skip_invalid_counts_and_lists_every_bad_record(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(jsonl(TLDR, json.dumps(TLDR)[:30], with_changes(TLDR, choice=5), TLDR, "[]"))
    code = run_app(app, ["data", "inspect", str(path), "--skip-invalid", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    stats = json.loads(out)
    assert stats["comparisons"] == 2
    assert stats["invalid_records"] == 3
    assert [line.split(":")[1] for line in stats["invalid"]] == ["2", "3", "5"]


def test_strict_load_stops_at_first_bad_record(tmp_path: Path) -> None:
    from labelbench.data import load_comparisons
    from labelbench.errors import InputError

    path = tmp_path / "mixed.jsonl"
    path.write_bytes(jsonl(TLDR, with_changes(TLDR, choice=5), "{"))
    with pytest.raises(InputError, match=r":2: field 'choice'"):
        load_comparisons(path)
