"""Issue 26: judges through chat-completions servers (log-probabilities, verdicts, verdicts after
a rationale), hosted APIs without log-probabilities, and fleets of servers.

The fake server (``fake_openai_server.chat_completion``) answers ``chat.completion`` objects
shaped as OpenAI documents them, with and without ``logprobs``, refusals and ``n`` > 1.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fake_openai_server import REFUSE, UNPARSEABLE, make_server

from labelbench import benchmark
from labelbench.config import LabelerSpec, parse_config
from labelbench.data import Comparison
from labelbench.errors import InputError, ModelError
from labelbench.labeling import LabelCache
from labelbench.labeling.chat_backend import (
    answer_instruction,
    answer_logprobs,
    normalise_token,
    parse_verdict,
)
from labelbench.labeling.labeler import labeler_spec, open_labeler
from labelbench.prompting.planner import chat_messages, message_frame
from labelbench.report.cli import write_report
from labelbench.rundir import REPORT_MD, RESULTS, SUMMARY, read_summary

VARIANT = "summarization/base-0shot"
COT = "summarization/detailed-0shot-cot"
MISSING = "[no-answer-2]"
SECRET = "sk-labelbench-chat-0123456789"
KEY_ENV = "LABELBENCH_TEST_CHAT_KEY"


@contextmanager
def servers(count: int = 1, **options) -> Iterator[tuple[list[str], list]]:
    """``count`` fake servers in threads: (their base URLs, the servers)."""
    with ExitStack() as stack:
        running = []
        for _ in range(count):
            server = make_server(0, missing_marker=MISSING, **options)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            running.append(server)
        yield [f"http://127.0.0.1:{s.server_address[1]}/v1" for s in running], running


def pairs(count: int, marks: dict[int, str] | None = None) -> list[Comparison]:
    marks = marks or {}
    return [
        Comparison(
            id=str(n),
            group_id=str(n),
            task="summarization",
            context=f"post {n} about a job {marks.get(n, '')}",
            response_a=f"a short summary {n}",
            response_b=f"a longer summary of post {n}",
        )
        for n in range(count)
    ]


def chat(url: str | list[str], **fields) -> LabelerSpec:
    return LabelerSpec(name="judge", backend="chat", url=url, **fields)


# ------------------------------------------------------------------ reading answers


def test_answer_tokens_match_with_spaces_and_case_normalised():
    assert normalise_token(" 1") == normalise_token("1 ") == normalise_token("▁1") == "1"
    assert normalise_token("a") == normalise_token(" A")
    top = [
        {"token": "1", "logprob": math.log(0.5)},
        {"token": " 1", "logprob": math.log(0.1)},
        {"token": " 2", "logprob": math.log(0.3)},
        {"token": "The", "logprob": math.log(0.1)},
    ]
    one, two = answer_logprobs(top, ("1", "2"))
    assert math.exp(one) == pytest.approx(0.6) and math.exp(two) == pytest.approx(0.3)
    assert answer_logprobs(top[:2], ("1", "2")) is None  # "2" missing: unscored, never 0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        (" 2\n", 1),
        ("[[2]]", 1),
        ("[1].", 0),
        ("Preferred Summary=2", 1),
        ("preferred summary = [[1]]", 0),
        ("Summary 1 is better", None),
        ("1 or 2", None),
        ("", None),
        ("3", None),
    ],
)
def test_verdicts_alone_are_read_strictly(text, expected):
    assert parse_verdict(text, ("1", "2"), "Preferred Summary=", rationale=False) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Summary 2 misses the point.\nPreferred Summary=1", 0),
        ("Both are fine, 1 is shorter.\n\n**Preferred Summary= 2**\n", 1),
        ("Summary 1 reads better.\n[[1]]", 0),
        ("Summary 1 reads better.\n1", None),  # a bare digit after a rationale: not a verdict
        ("Preferred Summary=1\nBut on reflection summary 2 is better.", None),  # not last
        ("Summary 1 is better.", None),
    ],
)
def test_verdicts_after_a_rationale_need_the_ending_line(text, expected):
    assert parse_verdict(text, ("1", "2"), "Preferred Summary=", rationale=True) == expected


def test_messages_round_trip_through_the_request_text():
    frame = message_frame("Be fair.")
    text = frame.prefix + "Which is better?" + frame.suffix + "Preferred Summary="
    assert chat_messages(text) == [
        {"role": "system", "content": "Be fair."},
        {"role": "user", "content": "Which is better?"},
        {"role": "assistant", "content": "Preferred Summary="},
    ]
    with pytest.raises(ValueError):
        chat_messages("plain text rendered for a completions endpoint")
    instruction = answer_instruction(("1", "2"), "Preferred Summary=", rationale=True)
    assert '"Preferred Summary=1" or "Preferred Summary=2"' in instruction


# ------------------------------------------------------------------ the three modes


def test_logprob_judge_prefill_and_instruction(capsys):
    items = pairs(4, {0: MISSING})
    with servers() as ([url], [server]):
        with open_labeler(chat(url, prefill=True)) as labeler:
            prefilled = labeler.label(items, VARIANT, cache=None, require_scores=True)
        prefill_bodies = list(server.bodies)
        server.bodies.clear()
        with open_labeler(chat(url)) as labeler:
            instructed = labeler.label(items, VARIANT, cache=None, require_scores=True)
    body = prefill_bodies[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "Preferred Summary="}
    plain = server.bodies[0]
    assert "continue_final_message" not in plain and plain["messages"][-1]["role"] == "user"
    assert plain["messages"][-1]["content"].endswith('alone, nothing else: "1" or "2".')
    for result in (prefilled, instructed):
        assert {row.kind for row in result.rows} == {"logprobs"}
        unscored = [row.item_id for row in result.rows if not row.scored]
        assert set(unscored) == {"0"}  # "2" missing from the top log-probabilities
        assert all(row.requests == 1 for row in result.rows)
    err = capsys.readouterr().err
    assert "labels unscored" in err and "missing from the first generated token's top 20" in err


def test_verdict_judge_hard_and_soft_labels_and_unparseable_replies(capsys):
    items = pairs(6, {0: UNPARSEABLE, 1: REFUSE})
    with servers() as ([url], [server]):
        with open_labeler(chat(url, logprobs=False)) as labeler:
            hard = labeler.label(items, VARIANT, cache=None, require_scores=True)
        with open_labeler(chat(url, logprobs=False, samples=5, temperature=1.0)) as labeler:
            soft = labeler.label(items, VARIANT, cache=None, require_scores=True)
    assert "logprobs" not in server.bodies[0]
    rows = {(row.item_id, row.order): row for row in hard.rows}
    assert rows[("0", "AB")].distribution is None and rows[("0", "AB")].unparsed == 1
    assert rows[("0", "AB")].replies == ("Both summaries have merits; it is hard to say.",)
    assert rows[("1", "AB")].replies == ("I'm sorry, I can't help with that.",)  # a refusal
    scored = [row for row in hard.rows if row.scored]
    assert len(scored) == 8 and all(set(row.distribution) == {0.0, 1.0} for row in scored)
    assert {row.kind for row in hard.rows} == {"verdict"}
    soft_scored = [row for row in soft.rows if row.scored]
    assert any(0 < row.distribution[0] < 1 for row in soft_scored)  # verdict shares
    assert all(len(row.replies) == 5 for row in soft.rows)
    assert any(body.get("n") == 5 and body["temperature"] == 1.0 for body in server.bodies)
    err = capsys.readouterr().err
    assert "4 of 12 labels unscored" in err and "refusals" in err
    assert "5 replies per request" in err and "5 times the generated tokens" in err


def test_verdict_after_a_rationale_reads_the_ending_line():
    items = pairs(4, {0: UNPARSEABLE})
    with servers() as ([url], [server]):
        labeler = open_labeler(chat(url, logprobs=False, prefill=True))
        result = labeler.label(items, COT, cache=None)
    body = server.bodies[-1]
    assert body["messages"][-1] == {"role": "assistant", "content": "Rationale:"}
    assert '"Preferred Summary=1" or "Preferred Summary=2"' in body["messages"][-2]["content"]
    assert len(server.bodies) == 8  # one generation a label: no scoring request
    for row in result.rows:
        assert row.kind == "verdict" and len(row.samples) == 1 and row.requests == 1
        if row.item_id == "0":
            assert (
                not row.scored and row.unparsed == 1 and "hard to say" in row.samples[0].rationale
            )
        else:
            assert row.scored and row.samples[0].rationale.strip().splitlines()[-1].startswith(
                "Preferred Summary="
            )


def test_logprobs_after_a_rationale_ask_a_second_time():
    with servers() as ([url], [server]), open_labeler(chat(url)) as labeler:
        result = labeler.label(pairs(2), COT, cache=None, require_scores=True)
    assert all(row.scored and row.requests == 2 for row in result.rows)
    second = [b for b in server.bodies if b.get("logprobs")]
    assert len(second) == 4
    roles = [m["role"] for m in second[0]["messages"]]
    assert roles == ["user", "assistant", "user"]  # rationale, then the answer asked alone


def test_a_hosted_api_without_logprobs_is_unscored_with_a_reason_not_a_half():
    with servers(chat_logprobs=False) as ([url], _), open_labeler(chat(url)) as labeler:
        assert labeler.preferences(pairs(2), VARIANT, cache=None) == [None, None]
        with pytest.raises(ModelError, match=r"without log-probabilities.*logprobs: false"):
            labeler.label(pairs(2), VARIANT, cache=None, require_scores=True)


def test_a_server_that_ignores_n_is_asked_again_for_each_reply():
    with servers(ignore_n=True) as ([url], [server]):
        labeler = open_labeler(chat(url, logprobs=False, samples=3))
        result = labeler.label(pairs(2), VARIANT, cache=None)
    assert all(len(row.replies) == 3 and row.requests == 3 for row in result.rows)
    assert len(server.bodies) == 12


# ------------------------------------------------------------------ fleets, faults and keys


def test_two_servers_share_the_work_and_give_the_labels_of_one():
    items = pairs(8)
    with servers(2) as (urls, fleet):
        with open_labeler(chat(urls, concurrency=2)) as labeler:
            spread = labeler.label(items, VARIANT, cache=None)
        with open_labeler(chat(urls[0])) as labeler:
            single = labeler.label(items, VARIANT, cache=None)
    assert all(server.completions > 0 for server in fleet)  # both servers were asked
    assert [r.distribution for r in spread.rows] == [r.distribution for r in single.rows]


def test_a_failing_server_is_drained_and_its_requests_retried_elsewhere(caplog):
    caplog.set_level(logging.WARNING)
    with servers() as ([good], [server]), servers(down=True) as ([bad], _):
        spec = chat([bad, good], identity="judge-weights@1", concurrency=1)
        with open_labeler(spec) as labeler:
            labeler.backend.fleet.backoff = 60.0  # once drained, the bad server stays out
            labeler.backend.fleet.max_backoff = 60.0
            result = labeler.label(pairs(6), VARIANT, cache=None)
            retries = labeler.backend.retries
    assert all(row.scored for row in result.rows) and server.completions == 12
    assert retries == 1  # the bad server failed once, then rested: no request went there again
    assert any("HTTP 503" in r.getMessage() and "another server" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_fleet_identity_is_one_labeler_when_identity_names_the_weights():
    urls = ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]  # opening sends nothing
    weights = "Qwen/Qwen2.5-7B@abc"
    fleet = open_labeler(chat(urls, identity=weights))
    assert fleet.identity == open_labeler(chat(urls[1], identity=weights)).identity
    assert open_labeler(chat(urls)).identity != open_labeler(chat(urls[0])).identity  # endpoints
    verdicts = open_labeler(chat(urls, identity=weights, logprobs=False))
    assert verdicts.identity != fleet.identity  # verdicts are other labels


def test_faults_are_retried_and_the_key_never_leaves_the_header(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    items = pairs(3)
    with servers(api_key=SECRET) as ([url], _):
        clean = open_labeler(chat(url, api_key_env=KEY_ENV)).label(items, VARIANT, cache=None)
    with servers(api_key=SECRET, fail_first=2, retry_after="0") as ([url], _):
        spec = chat(url, api_key_env=KEY_ENV, logprobs=False, timeout=5)
        with open_labeler(spec) as labeler, LabelCache(tmp_path / "cache") as cache:
            labeler.backend.fleet.backoff = 0.01
            verdicts = labeler.label(items, VARIANT, cache=cache)
            again = labeler.label(items, VARIANT, cache=cache)
            assert labeler.backend.retries >= 2 * len(verdicts.rows)
        with open_labeler(chat(url, api_key_env=KEY_ENV)) as labeler:
            faulty = labeler.label(items, VARIANT, cache=None)
    assert [r.distribution for r in faulty.rows] == [r.distribution for r in clean.rows]
    assert all(row.cached for row in again.rows)
    assert [r.replies for r in again.rows] == [r.replies for r in verdicts.rows]
    assert not any(SECRET in record.getMessage() for record in caplog.records)
    for path in (tmp_path / "cache").iterdir():
        assert SECRET.encode() not in path.read_bytes()
    assert SECRET not in json.dumps(verdicts.records()) + labeler.identity


def test_a_wrong_key_fails_in_one_line_without_retrying(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-987")
    with servers(api_key=SECRET) as ([url], _):
        labeler = open_labeler(chat(url, api_key_env=KEY_ENV))
        with pytest.raises(ModelError, match=r"/chat/completions answered HTTP 401") as error:
            labeler.label(pairs(1), VARIANT, cache=None)
        assert labeler.backend.retries == 0
    assert "sk-wrong-987" not in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------ specs


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backend": "chat"}, "needs a url"),
        ({"backend": "chat", "url": "u", "samples": 3}, "samples > 1 is for verdict judges"),
        ({"backend": "chat", "url": "u", "chat": False}, "sends chat messages"),
        ({"backend": "chat", "url": ["u", "u"]}, "listed twice"),
        ({"backend": "http", "url": ["u", "v"]}, "is for backend 'chat'"),
        ({"backend": "http", "url": "u", "logprobs": False}, "logprobs is for backend 'chat'"),
        ({"backend": "chat", "url": "u", "top_logprobs": 21}, "less than or equal to 20"),
        ({"backend": "chat", "url": "u", "compile": True}, "compile is for backend 'transformers'"),
        ({"backend": "http", "url": "u", "compile": False}, "compile is for backend 'transf"),
        ({"backend": "vllm", "decode_memory_gib": 2}, "decode_memory_gib is for backend 'trans"),
        ({"decode_memory_gib": float("inf")}, "finite number"),  # overflowed opening the model
        ({"decode_memory_gib": 1e300}, "less than or equal to 1000000"),
        ({"decode_memory_gib": float("nan")}, "finite number"),
    ],
)
def test_chat_spec_errors_name_the_field(tmp_path, fields, message):
    config = {
        "datasets": [{"name": "d", "path": "x.jsonl"}],
        "labelers": [{"name": "judge", **fields}],
        "variants": [VARIANT],
        "output_dir": "out",
    }
    with pytest.raises(InputError, match=message) as error:
        parse_config(yaml.safe_dump(config), tmp_path / "run.yaml")
    assert error.value.line is not None and str(error.value.field).startswith("labelers[0]")


def test_the_command_line_knows_the_chat_backend():
    with pytest.raises(InputError, match="chat backend needs the server's base URL"):
        labeler_spec("--labeler", name="m", backend="chat")
    assert labeler_spec("--labeler", name="m", backend="chat", url="http://h/v1").backend == "chat"


# ------------------------------------------------------------------ a benchmark run


def write_posts(path: Path, marks: dict[int, str], count: int = 8) -> Path:
    with path.open("w") as out:
        for post in range(count):
            texts = [f"summary {post} " + "detail " * (3 + post % 4), f"summary {post}"]
            record = {
                "info": {
                    "id": f"t3_{post}",
                    "post": f"post number {post} about a job {marks.get(post, '')}",
                    "title": "advice",
                    "subreddit": "jobs",
                },
                "summaries": [{"text": t, "policy": "synthetic"} for t in texts],
                "choice": post % 2,
                "worker": "w0",
                "batch": "synthetic",
                "split": "valid",
                "extra": {"confidence": 1 + post % 9},
            }
            out.write(json.dumps(record) + "\n")
    return path


def test_a_run_labels_through_a_chat_server_in_every_mode(tmp_path):
    data = write_posts(tmp_path / "pairs.jsonl", {0: MISSING, 1: UNPARSEABLE})
    with servers() as ([url], _):
        config = {
            "datasets": [{"name": "pairs", "path": str(data), "format": "openai-comparisons"}],
            "labelers": [
                {"name": "judge", "label": "logprobs", "backend": "chat", "url": url},
                {
                    "name": "judge",
                    "label": "verdict",
                    "backend": "chat",
                    "url": url,
                    "logprobs": False,
                    "price_input": 0.15,
                    "price_output": 0.6,
                },
            ],
            "variants": [VARIANT, COT],
            "output_dir": str(tmp_path / "run"),
            "analysis": {"bootstrap": 20},
        }
        parsed = parse_config(yaml.safe_dump(config), tmp_path / "run.yaml")
        out = benchmark.run(parsed, cache_dir=tmp_path / "cache", progress=False)
    write_report(out)
    results = pd.read_parquet(out / RESULTS)
    kinds = results.groupby("labeler")["label_kind"].unique()
    assert list(kinds["logprobs"]) == ["logprobs"] and list(kinds["verdict"]) == ["verdict"]
    assert (results["requests"] > 0).all()
    unparsed = results[(results["labeler"] == "verdict") & (results["item_id"] == "t3_1")]
    assert all(len(replies) == 2 for replies in unparsed["unparsed_replies"])
    summary = read_summary(out / SUMMARY)
    cells = {(c.labeler, c.variant): c for c in summary.datasets["pairs"].labeler_cells()}
    assert len(cells) == 4  # logprobs, logprobs after a rationale, verdict, verdict after one
    for (labeler, variant), cell in cells.items():
        assert cell.accuracy is not None
        assert cell.position_bias is not None
        assert (cell.cost.requests_per_pair or 0) > 0
        assert cell.properties.label_kind == labeler
        # logprobs: post 0 lacks answer 2; verdicts: post 1 has no verdict to read
        assert cell.cost.unscored == 1, (labeler, variant)
        priced = cell.cost.price_per_1k_pairs
        assert (priced is not None and priced > 0) == (labeler == "verdict")
    report = (out / REPORT_MD).read_text()
    assert "requests/pair" in report and "price/1k pairs" in report and "| verdict |" in report
