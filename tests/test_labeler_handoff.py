"""The labeler's identity (cache key) and its handoff from the benchmark to RLAIF training."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fake_openai_server import make_server
from test_prompt_golden import CHAT_TEMPLATE
from test_rlaif_cli import run, write_comparisons

from labelbench.benchmark import run as run_benchmark
from labelbench.config import LabelerSpec, parse_config
from labelbench.labeling.labeler import labeler_identity, load_winner, open_labeler
from labelbench.report.cli import write_report
from labelbench.rundir import RESULTS, WINNER, read_winner

VARIANT = "summarization/base-0shot"


@contextmanager
def fake_server(weights: str = "") -> Iterator[tuple[str, object]]:
    """An OpenAI-compatible test server in a thread: (base URL, server)."""
    server = make_server(0, weights=weights)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()


def benchmark(
    tmp_path: Path, data: Path, labelers: list[dict], name: str = "run", aggregation: str = "auto"
) -> Path:
    """``labelbench run`` + report on ``data`` with the given labeler specs."""
    config = {
        "datasets": [{"name": "pairs", "path": str(data), "format": "openai-comparisons"}],
        "labelers": labelers,
        "variants": [VARIANT],
        "output_dir": str(tmp_path / name),
        "analysis": {"bootstrap": 20, "winner_aggregation": aggregation},
    }
    parsed = parse_config(yaml.safe_dump(config), tmp_path / f"{name}.yaml")
    out = run_benchmark(parsed, cache_dir=tmp_path / "cache", progress=False)
    write_report(out)
    return out


def test_http_labelers_with_one_model_name_on_two_servers_keep_their_own_labels(tmp_path):
    data = write_comparisons(tmp_path / "pairs.jsonl", n_posts=6)
    with fake_server("weights-a") as (url_a, a), fake_server("weights-b") as (url_b, b):
        server_a, server_b = a, b
        out = benchmark(
            tmp_path,
            data,
            [
                {"name": "served", "label": "first", "backend": "http", "url": url_a},
                {"name": "served", "label": "second", "backend": "http", "url": url_b},
            ],
        )
    assert server_a.completions > 0 and server_b.completions > 0  # both servers were asked
    results = pd.read_parquet(out / RESULTS).set_index(["labeler", "item_id"])
    first, second = results.loc["first"], results.loc["second"]
    assert list(first.index) == list(second.index)
    assert not (first["ai_pref_a"] == second["ai_pref_a"]).all()


def test_identity_covers_backend_weights_or_endpoint_chat_and_dtype(tmp_path, tiny_lm):
    model, tokenizer = tiny_lm
    http_a = LabelerSpec(name="m", backend="http", url="http://a:8000/v1")
    http_b = http_a.model_copy(update={"url": "http://b:8000/v1"})
    ids = {
        labeler_identity(http_a, weights="http://a:8000/v1|model=m", chat=False, dtype=None),
        labeler_identity(http_b, weights="http://b:8000/v1|model=m", chat=False, dtype=None),
    }
    assert len(ids) == 2
    # a set identity names the weights; backend, chat mode and dtype are still added
    named = [s.model_copy(update={"identity": "org/m@abc"}) for s in (http_a, http_b)]
    same = {labeler_identity(s, weights=s.url, chat=False, dtype=None) for s in named}
    assert same == {"http:org/m@abc|chat=off"}

    secret = open_labeler(
        LabelerSpec(name="m", backend="http", url="http://user:sk-secret@rm:8000/v1/?key=sk-2")
    )
    assert secret.identity == "http:http://rm:8000/v1|model=m|chat=off"  # no credentials kept

    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    plain = open_labeler(LabelerSpec(name=str(folder)))
    assert plain.identity.startswith("transformers:tiny@sha256:")
    assert plain.identity.endswith("|chat=off|dtype=float32")
    assert plain.spec.chat is False and plain.spec.dtype == "float32"
    chat = open_labeler(LabelerSpec(name=str(folder), chat=True, identity=None))
    bf16 = LabelerSpec(name=str(folder), dtype="bfloat16")
    assert labeler_identity(bf16, weights="w", chat=False, dtype=bf16.dtype).endswith(
        "dtype=bfloat16"
    )
    tokenizer_with_chat = tokenizer.__class__.from_pretrained(folder)
    tokenizer_with_chat.chat_template = CHAT_TEMPLATE
    tokenizer_with_chat.save_pretrained(folder)
    auto = open_labeler(LabelerSpec(name=str(folder)))
    assert auto.spec.chat is True and auto.identity.endswith("|chat=on|dtype=float32")
    # a new chat template is a new labeler (issue 25 item 4): the identity hashes it
    assert auto.identity not in (chat.identity, plain.identity)


def _labels(out: Path) -> dict[str, float]:
    """The report's soft labels: winner.json's aggregation applied to the results table's
    per-order P(A) and log-odds (the same function the report's aggregation table uses)."""
    results = pd.read_parquet(out / RESULTS)
    winner = load_winner(out / WINNER)
    assert winner.aggregation is not None
    p_a = winner.aggregation.soft_labels(
        results["ai_pref_a_ab"],
        results["ai_pref_a_ba"],
        results["ai_logodds_a_ab"],
        results["ai_logodds_a_ba"],
        results["len_a"],
        results["len_b"],
    )
    return dict(zip(results["item_id"], p_a, strict=True))


def _check_handoff(tmp_path, capsys, monkeypatch, data: Path, out: Path) -> LabelerSpec:
    """``rlaif label --winner`` labels the benchmark's items as the benchmark did: same P(A),
    read back from the same cache (the identity is the same), none computed again."""
    from datasets import load_from_disk

    from labelbench.labeling.cache import LabelCache

    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with LabelCache(tmp_path / "cache") as cache:
        stored = len(cache)
    winner = load_winner(out / WINNER)
    labelled = tmp_path / "labelled"
    code, _, err = run(
        ["label", "--data", data, "--winner", out / WINNER, "--out", labelled], capsys
    )
    assert code == 0, err
    with LabelCache(tmp_path / "cache") as cache:
        assert len(cache) == stored  # every label came from the benchmark's cache rows
    dataset = load_from_disk(str(labelled))
    expected = _labels(out)
    assert len(dataset) == len(expected)
    for row in dataset:
        p_a = expected[row["id"]]
        assert row["soft_label"] == pytest.approx(max(p_a, 1 - p_a), abs=1e-12)
    assert set(dataset["labeler"]) == {open_labeler(winner.labeler).identity}
    assert set(dataset["aggregation"]) == {winner.aggregation.method}
    return winner.labeler


def test_rlaif_label_with_a_calibrated_winner_equals_the_report(
    tmp_path, tiny_lm, capsys, monkeypatch
):
    """A winner whose soft labels are calibrated on human labels: ``rlaif label --winner`` gives
    the report's labels for the same items, and says their confidence and log-loss."""
    import math

    from datasets import load_from_disk

    model, tokenizer = tiny_lm
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    data = write_comparisons(tmp_path / "pairs.jsonl", n_posts=24)
    out = benchmark(tmp_path, data, [{"name": str(folder)}], aggregation="calibrated")
    written = read_winner(out / WINNER).aggregation
    assert written is not None and written.method == "calibrated"
    assert written.n_fit == 24 and written.fitted_on == ["pairs"]
    weight = written.weight
    assert weight is not None and math.isfinite(weight) and weight != 1.0
    _check_handoff(tmp_path, capsys, monkeypatch, data, out)
    dataset = load_from_disk(str(tmp_path / "labelled"))
    results = pd.read_parquet(out / RESULTS).set_index("item_id")
    for row in dataset:  # calibrated = sigmoid(weight x mean of the orders' log-odds)
        item = results.loc[row["id"]]
        d = (item["ai_logodds_a_ab"] + item["ai_logodds_a_ba"]) / 2
        p_a = 1 / (1 + math.exp(-weight * d))
        assert row["soft_label"] == pytest.approx(max(p_a, 1 - p_a), abs=1e-9)
    code, printed, _ = run(
        ["label", "--data", data, "--winner", out / WINNER, "--out", tmp_path / "again"],
        capsys,
    )
    assert code == 0
    assert "calibrated" in printed and "mean confidence" in printed
    assert "against the 24 human labels" in printed and "log-loss" in printed


def test_rlaif_label_with_the_winner_equals_the_benchmark_for_a_chat_model(
    tmp_path, tiny_lm, capsys, monkeypatch
):
    model, tokenizer = tiny_lm
    folder = tmp_path / "tiny-chat"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with_chat = tokenizer.__class__.from_pretrained(folder)
    with_chat.chat_template = CHAT_TEMPLATE
    with_chat.save_pretrained(folder)
    data = write_comparisons(tmp_path / "pairs.jsonl", n_posts=6)
    out = benchmark(tmp_path, data, [{"name": str(folder)}])
    spec = _check_handoff(tmp_path, capsys, monkeypatch, data, out)
    assert spec.chat is True and spec.backend == "transformers" and spec.dtype == "float32"


def test_rlaif_label_with_the_winner_equals_the_benchmark_over_http(tmp_path, capsys, monkeypatch):
    data = write_comparisons(tmp_path / "pairs.jsonl", n_posts=6)
    with fake_server("weights-a") as (url, server):
        out = benchmark(tmp_path, data, [{"name": "served", "backend": "http", "url": url}])
        answered = server.completions
        spec = _check_handoff(tmp_path, capsys, monkeypatch, data, out)
        assert server.completions == answered  # nothing was asked again
    assert spec.backend == "http" and spec.url == url
    written = read_winner(out / WINNER).labeler_spec
    assert written is not None and written.backend == "http" and written.url == url
