"""Input faults found by trying peer projects' bug classes (issue 12): invalid Unicode, Excel
CSV, HH-RLHF transcripts that diverge early, --skip-invalid's exit code, and a fuzz test of
every loader format."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelbench.cli import app, run_app
from labelbench.data import ColumnMap, load_comparisons, load_records
from labelbench.data.select import Filters, apply_filters
from labelbench.errors import InputError

LLMBAR = {"input": "Say hi.", "output_1": "hi", "output_2": "bye", "label": 1}


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------------------- invalid Unicode


def test_lone_surrogate_from_a_json_escape_fails_at_load(tmp_path: Path, capsys) -> None:
    path = tmp_path / "l.jsonl"
    bad = json.dumps({**LLMBAR, "output_1": "hi \ud800 there"})  # written as "\ud800"
    assert "\\ud800" in bad
    path.write_text(json.dumps(LLMBAR) + "\n" + bad + "\n", encoding="ascii")
    code = run_app(app, ["data", "inspect", str(path)])
    err = one_error_line(capsys)
    assert code == 2
    assert f"{path}:2: field 'output_1': not valid Unicode: \\ud800 at character 4" in err
    code = run_app(app, ["data", "inspect", str(path), "--skip-invalid", "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert code == 0 and stats["comparisons"] == 1 and stats["invalid_records"] == 1
    assert "not valid Unicode" in stats["invalid"][0]


def test_invalid_unicode_in_a_nested_field_of_an_array(tmp_path: Path) -> None:
    record = {
        "info": {"id": "t3_x", "post": "A post.", "title": "T\udfff"},
        "summaries": [{"text": "a"}, {"text": "b"}],
        "choice": 0,
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(InputError) as caught:
        load_comparisons(path)
    assert (caught.value.record, caught.value.field) == (0, "info.title")


def test_odd_keys_and_roles_are_input_errors(tmp_path: Path) -> None:
    """Found by the fuzz test: a lone surrogate in a key, and a role that is not text."""
    key = tmp_path / "k.jsonl"
    key.write_text(json.dumps({**LLMBAR, "extra": {"\ud800": 1}}) + "\n")
    with pytest.raises(InputError) as caught:
        load_comparisons(key)
    assert caught.value.field == "extra.\ud800" and "not valid Unicode" in str(caught.value)
    assert "extra.\\ud800" in str(caught.value)  # escaped: printable
    role = tmp_path / "r.jsonl"
    chat = [{"role": ["user"], "content": "q"}, {"role": "assistant", "content": "a"}]
    role.write_text(
        json.dumps({"chosen": chat, "rejected": [*chat[:1], chat[1] | {"content": "b"}]})
    )
    with pytest.raises(InputError, match=r"r.jsonl:1: field 'chosen\[0\].role': role \['user'\]"):
        load_comparisons(role)


# ---------------------------------------------------------------------------- Excel CSV


def test_excel_csv_with_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    text = 'prompt,r1,r2,winner\r\nq,"a\r\nlong answer",b,1\r\nq2,c,d,2\r\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = load_comparisons(
        path, columns="context=prompt,response_a=r1,response_b=r2,label=winner"
    )
    assert [c.context for c in loaded] == ["q", "q2"]
    assert [c.meta["line"] for c in loaded] == [2, 4]
    assert loaded[0].response_a == "a\r\nlong answer"


def test_json_files_with_byte_order_mark(tmp_path: Path) -> None:
    lines, array = tmp_path / "l.jsonl", tmp_path / "a.json"
    lines.write_bytes(b"\xef\xbb\xbf" + (json.dumps(LLMBAR) + "\n").encode())
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps([LLMBAR], indent=1).encode())
    assert len(load_comparisons(lines)) == len(load_comparisons(array)) == 1


def test_multi_line_csv_record_is_reported_at_its_first_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "m.csv"
    path.write_text('prompt,r1,r2,winner\nq,a,b,1\n\nq,"spans\nthree\nlines",b,7\n')
    code = run_app(
        app,
        [
            "data",
            "inspect",
            str(path),
            "--map",
            "context=prompt,response_a=r1,response_b=r2,label=winner",
        ],
    )
    err = one_error_line(capsys)
    assert code == 2 and f"{path}:4: field 'winner'" in err


@pytest.mark.parametrize("fmt", [None, "columns"])
def test_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path, capsys, fmt) -> None:
    # line 3 opens a quoted value that never closes: csv would swallow lines 3-5 into it
    path = tmp_path / "q.csv"
    path.write_text('prompt,r1,r2,winner\nq,a,b,1\nq2,"unclosed,d,2\nq3,e,f,1\nq4,g,h,2\n')
    args = ["data", "inspect", str(path), "--map"]
    args += ["context=prompt,response_a=r1,response_b=r2,label=winner"]
    code = run_app(app, args + (["--format", fmt] if fmt else []))
    err = one_error_line(capsys)
    assert code == 2
    assert f"{path}:3: field 'r1': malformed CSV: the quote (\") that opens this" in err
    assert "never closed" in err
    # a quote inside an unquoted value is text, not an opening quote
    path.write_text('prompt,r1,r2,winner\nq,a 5" screen,b,1\n')
    assert load_comparisons(path, columns=args[-1])[0].response_a == 'a 5" screen'
    # the opening quote is on a later line than the row's start; CRLF line ends
    path.write_bytes(b'prompt,r1,r2,winner\r\nq,"two\r\nlines",b,1\r\nq,a,"open\r\nmore\r\n')
    with pytest.raises(InputError, match=r"q\.csv:4: field 'r2': .*never closed"):
        load_comparisons(path, columns=args[-1])


# ---------------------------------------------------------------------------- HH-RLHF divergence


HH_FINAL = {
    "chosen": "\n\nHuman: hi\n\nAssistant: hello",
    "rejected": "\n\nHuman: hi\n\nAssistant: go away",
}
HH_EARLY = {  # differ at the first reply, then each goes on with its own later turns
    "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: thanks\n\nAssistant: welcome",
    "rejected": "\n\nHuman: hi\n\nAssistant: go away\n\nHuman: rude\n\nAssistant: yes",
}


def test_hh_transcripts_that_diverge_early_are_counted_flagged_and_droppable(
    tmp_path: Path, capsys
) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (HH_FINAL, HH_EARLY, HH_FINAL)))
    loaded = load_comparisons(path)
    assert [c.meta["diverges_early"] for c in loaded] == [False, True, False]
    assert code_of(["data", "inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["diverges_early"] == 1
    kept, removed = apply_filters(loaded, Filters(drop_diverging=True))
    assert len(kept) == 2 and removed == {"diverging": 1}
    # and from a run config
    from labelbench.benchmark import prepare
    from labelbench.config import parse_config

    text = f"""\
        datasets:
          - {{name: hh, path: {path}, drop_diverging: true}}
        labelers: [{{name: x/y}}]
        variants: [dialogue_helpful/base-0shot]
        output_dir: {tmp_path / "out"}
    """
    (dataset,) = prepare(parse_config(textwrap.dedent(text), tmp_path / "c.yaml"), None)
    assert len(dataset.items) == 2


def code_of(args: list[str]) -> int:
    return run_app(app, args)


# ---------------------------------------------------------------------------- --skip-invalid


def test_skip_invalid_exits_0_and_prints_the_count(tmp_path: Path, capsys) -> None:
    """Decided: records skipped under --skip-invalid are not a failure (exit 0); the count and
    the first bad record go to stderr as one line, also with --json."""
    path = tmp_path / "l.jsonl"
    path.write_text(
        "".join(
            json.dumps(r) + "\n" for r in (LLMBAR, {**LLMBAR, "label": 9}, {**LLMBAR, "input": 3})
        )
    )
    for extra in ([], ["--json"]):
        code = run_app(app, ["data", "inspect", str(path), "--skip-invalid", *extra])
        captured = capsys.readouterr()
        assert code == 0
        assert f"{path}: 2 invalid record(s) skipped (first: {path}:2:" in captured.err
        assert len(captured.err.strip().splitlines()) == 1


def test_skip_invalid_in_a_run_config(tmp_path: Path, capsys) -> None:
    from labelbench.benchmark import prepare
    from labelbench.config import parse_config

    path = tmp_path / "l.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (LLMBAR, {**LLMBAR, "label": 9})))
    text = f"""\
        datasets:
          - {{name: bar, path: {path}, skip_invalid: true}}
        labelers: [{{name: x/y}}]
        variants: [instruction/base-0shot]
        output_dir: {tmp_path / "out"}
    """
    (dataset,) = prepare(parse_config(textwrap.dedent(text), tmp_path / "c.yaml"), None)
    assert len(dataset.items) == 1
    assert "1 invalid record(s) skipped" in capsys.readouterr().err


# ---------------------------------------------------------------------------- fuzz

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
BASES: dict[str, tuple[dict, str | None, str | None]] = {  # format: (record, format, map)
    "openai-comparisons": (
        {
            "info": {"id": "t3_x", "post": "A post.", "title": "T", "subreddit": "s"},
            "summaries": [{"text": " a", "policy": "p"}, {"text": " b", "policy": "q"}],
            "choice": 0,
            "worker": "w",
            "extra": {"confidence": 8},
        },
        "openai-comparisons",
        None,
    ),
    "hh-rlhf": (HH_EARLY, "hh-rlhf", None),
    "pandalm": (PANDA, "pandalm", None),
    "llmbar": (LLMBAR, "llmbar", None),
    "mt-bench-human": (
        {
            "question_id": 1,
            "model_a": "m1",
            "model_b": "m2",
            "winner": "tie",
            "judge": "j",
            "turn": 1,
            "conversation_a": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ],
            "conversation_b": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "b"},
            ],
        },
        "mt-bench-human",
        None,
    ),
    "trl-preference": (
        {"prompt": [{"role": "user", "content": "q"}], "chosen": "good", "rejected": "bad"},
        "trl-preference",
        None,
    ),
    "columns": (
        {"q": "question", "r1": "x", "r2": "y", "w": "model1", "votes": [1, 2]},
        None,
        "context=q,response_a=r1,response_b=r2,label=w;votes,labels=model1:A;2:B;1:A;0:tie",
    ),
    "trl-conversational": (
        {
            "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}],
        },
        None,
        None,
    ),
    "tldr-posts": (
        {"instruction_id": "t3_y", "instruction": "A post.", "gold_response": "tl;dr"},
        "tldr-posts",
        None,
    ),
}

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\x1b[31mred\x1b[0m",
        "\ud800",
        "x\udfffy",
        "\r\n\r\n",
        "\u2028",
        "\ufeff",
        "A",
        "tie",
        "-1",
        "0.5",
        "1e309",
        "NaN",
        "\n\nHuman: hi\n\nAssistant:",
        "x" * 100_000,
    ]
) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ODD_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn, base: dict) -> dict:
    """The base record with up to three changes, each at a path down to three levels into
    objects and lists (a message's role, a summary's text): delete, or replace the value."""
    record = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        target: dict | list = record
        key: str | int = draw(st.sampled_from(sorted(record) or ["extra"]))
        for _depth in range(2):
            inner = target[key] if key in range(len(target)) or key in target else None
            if not isinstance(inner, dict | list) or not inner or not draw(st.booleans()):
                break
            target = inner
            keys = sorted(inner) if isinstance(inner, dict) else list(range(len(inner)))
            key = draw(st.sampled_from(keys))
        operation = draw(st.sampled_from(["delete", "value", "text"]))
        if operation == "delete":
            if isinstance(target, dict):
                target.pop(key, None)
            else:
                del target[key]
        else:
            target[key] = draw(JSON_VALUES if operation == "value" else ODD_TEXT)
    return record


def _serialize(records: list[dict], layout: str) -> bytes:
    if layout == "array":
        return json.dumps(records).encode()
    if layout == "csv":
        buffer = io.StringIO()
        names = sorted({str(k) for r in records for k in r})
        writer = csv.writer(buffer)
        writer.writerow(names)
        for record in records:
            writer.writerow([record.get(name, "") for name in names])
        return buffer.getvalue().encode("utf-8", "surrogatepass")
    return "".join(json.dumps(r) + "\n" for r in records).encode()


@st.composite
def files(draw: st.DrawFn, name: str) -> tuple[str, bytes]:
    base = BASES[name][0]
    records = draw(st.lists(mutated(base), max_size=4))
    layout = draw(
        st.sampled_from(["lines", "array", "csv"] if name == "columns" else ["lines", "array"])
    )
    data = _serialize(records, layout)
    twist = draw(
        st.sampled_from(["none", "bom", "crlf", "cr", "truncate", "escape", "surrogate", "bytes"])
    )
    if twist == "bom":
        data = b"\xef\xbb\xbf" + data
    elif twist == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif twist == "cr":
        data = data.replace(b"\n", b"\r")
    elif twist == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif twist == "escape":
        data = data.replace(b'"', b'"\\q', 1)  # an invalid JSON escape
    elif twist == "surrogate":  # a lone surrogate escape at the start of the k-th string value
        parts = data.split(b': "')
        if len(parts) > 1:
            k = draw(st.integers(1, len(parts) - 1))
            parts[k] = b"\\udc80" + parts[k]
        data = b': "'.join(parts)
    elif twist == "bytes":
        data = data + draw(st.binary(max_size=8))
    suffix = {"csv": ".csv", "array": ".json"}.get(layout, ".jsonl")
    return suffix, data


@pytest.mark.parametrize("name", sorted(BASES))
def test_fuzzed_files_load_or_fail_with_one_input_error(name: str) -> None:
    """Random malformed or odd records (wrong types, missing keys, huge strings, control
    characters, lone surrogates, invalid escapes, empty files, BOMs, mixed line endings): a
    clean load, or one InputError naming the file (and the line or record when one is at
    fault), in one line; never another exception. What loads is valid text (a tokenizer or an
    HTTP client can encode it). With skip_invalid the good records load."""
    _, fmt, columns = BASES[name]

    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(files(name))
    def check(file: tuple[str, bytes]) -> None:
        suffix, data = file
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"data{suffix}"
            path.write_bytes(data)
            for skip in (False, True):
                try:
                    loaded = load_records(path, fmt, columns=columns, skip_invalid=skip)
                except InputError as error:
                    text = str(error)
                    assert error.source == str(path)
                    assert "\n" not in text and text.isprintable()
                    text.encode("utf-8")  # printable on any UTF-8 terminal
                else:
                    for record in loaded:  # usable downstream: encodable for a tokenizer
                        json.dumps(record.model_dump(), ensure_ascii=False).encode("utf-8")
                    for bad in loaded.invalid:
                        assert bad.source == str(path)
                        assert bad.line is not None or bad.record is not None
                        assert str(bad).isprintable()

    check()


def test_column_map_text_round_trips() -> None:
    spec = "context=q,response_a=r1,response_b=r2,label=a;b,labels=x:A;y:B;tie (both bad):tie"
    columns = ColumnMap.parse(spec)
    assert columns.label == ("a", "b")
    assert ColumnMap.parse(columns.to_spec()) == columns
