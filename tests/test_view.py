"""The item view (``labelbench view``): texts read from the data folder at view time, prompts as
sent, filters that select what they name, all checked in headless Chromium."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_prompt_golden import CHAT_TEMPLATE

from labelbench.report import browser

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
document.addEventListener("labelbench-view-ready", () => {
  const $ = (id) => document.getElementById(id);
  const count = () => +$("count").dataset.shown;
  const set = (id, value) => {
    const node = $(id);
    if (node.type === "checkbox") node.checked = value; else node.value = value;
    node.dispatchEvent(new Event(node.type === "search" ? "input" : "change"));
  };
  const out = {total: count(), status: $("status").textContent, filters: {}};
  $("v-confident").value = "0.0001";
  for (const name of ["disagree", "sameslot", "gap", "confident", "unscored"]) {
    set("f-" + name, true);
    out.filters[name] = count();
    out.filters[name + "_ids"] = Array.from(document.querySelectorAll("details.row"))
      .map((d) => +d.id.slice(1));
    set("f-" + name, false);
  }
  set("f-labeler", "raw"); out.raw = count(); set("f-labeler", "");
  set("f-variant", "summarization/base-0shot-cot"); out.cot = count(); set("f-variant", "");
  set("f-dataset", "tldr"); out.tldr = count(); set("f-dataset", "");
  set("sort", "confidence");
  out.sorted = Array.from(document.querySelectorAll("details.row")).map((d) => +d.id.slice(1));
  set("sort", "item");
  const row = document.querySelector("details.row");
  row.open = true;
  row.dispatchEvent(new Event("toggle"));
  out.row = +row.id.slice(1);
  out.texts = Array.from(row.querySelectorAll("pre.text")).map((p) => p.textContent);
  out.prompts = Array.from(row.querySelectorAll("pre.prompt")).map(
    (p) => [p.dataset.order, p.textContent]);
  out.orders = Array.from(row.querySelectorAll("table.figs tr[data-order]")).map(
    (tr) => Array.from(tr.children).map((td) => td.textContent));
  out.links = Array.from(row.querySelectorAll(".others a")).map((a) => a.getAttribute("href"));
  out.chatty = row.querySelector("summary").textContent.includes("chatty");
  set("f-labeler", out.chatty ? "chatty" : "raw");  // the other labeler's rows are hidden now
  location.hash = out.links.find((href) => !document.querySelector(href));
  setTimeout(() => {
    const target = document.querySelector(location.hash);
    out.followed = !!(target && target.open && target.querySelector("pre.text"));
    out.shown_after_link = count();
    window.labelbenchProbe(out);
  }, 100);
});
"""


@pytest.fixture(scope="module")
def view_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tiny_lm) -> Path:
    """A run of the tiny model on 4 TL;DR items: with its chat template and without, 0-shot and
    chain of thought; one label made unscored afterwards."""
    from labelbench import benchmark
    from labelbench.config import parse_config

    root = tmp_path_factory.mktemp("view")
    model, tokenizer = tiny_lm
    folder = root / "tiny-chat"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with_chat = tokenizer.__class__.from_pretrained(folder)
    with_chat.chat_template = CHAT_TEMPLATE
    with_chat.save_pretrained(folder)
    text = f"""
        datasets:
          - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: 4, max_chars: 900}}
        labelers:
          - {{name: {folder}, label: chatty, chat: true}}
          - {{name: {folder}, label: raw, chat: false}}
        variants: [summarization/base-0shot, summarization/base-0shot-cot]
        output_dir: {root / "run"}
        analysis: {{bootstrap: 20}}
    """
    config = parse_config(textwrap.dedent(text), root / "run.yaml")
    out = benchmark.run(config, data_dir=data_dir, cache_dir=root / "cache", progress=False)
    frame = pd.read_parquet(out / "results.parquet")
    for column in ("ai_pref_a", "ai_pref_a_ab", "ai_pref_a_ba"):
        frame.loc[3, column] = np.nan  # one unscored label
    frame.to_parquet(out / "results.parquet", index=False)
    return out


def _expected(frame: pd.DataFrame) -> dict[str, set[int]]:
    """Which rows (in the view's order: results sorted as the report sorts them) each filter
    keeps, computed here from the results table."""
    p, h = frame["ai_pref_a"].to_numpy(float), frame["human_pref_a"].to_numpy(float)
    ab, ba = frame["ai_pref_a_ab"].to_numpy(float), frame["ai_pref_a_ba"].to_numpy(float)
    la, lb = frame["len_a"].to_numpy(float), frame["len_b"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        decided = ~np.isnan(p) & ~np.isclose(p, 0.5) & ~np.isnan(h) & ~np.isclose(h, 0.5)
        disagree = decided & ((p > 0.5) != (h > 0.5))
        same = ((ab > 0.5) & (ba < 0.5)) | ((ab < 0.5) & (ba > 0.5))
        gap = np.abs(la - lb) / np.maximum(la, lb) > 0.1
    masks = {
        "disagree": disagree,
        "sameslot": same,
        "gap": gap,
        "confident": disagree & (np.abs(p - 0.5) >= 0.0001),
        "unscored": np.isnan(p),
    }
    return {name: set(np.flatnonzero(mask).tolist()) for name, mask in masks.items()}


def test_view_data_has_texts_exact_prompts_and_rationales(view_run: Path, data_dir: Path) -> None:
    from labelbench.view.collect import collect

    data = collect(view_run, data_dir, cache_dir=view_run.parent / "cache")
    assert len(data["rows"]) == 16 and len(data["items"]) == 4 and data["missing_texts"] == 0
    # every prompt rendered again hashes to a key of the label cache: the text is the one sent
    assert data["prompts"] == 32 and data["verified"] == 32
    cot = [r for r in data["rows"] if data["cells"][r["cell"]]["variant"].endswith("cot")]
    rationales = [p["rationales"] for r in cot for p in r["prompts"]]
    assert rationales and all(all(i is not None for i in found) for found in rationales)
    chat = {c["labeler"]: c["chat"] for c in data["cells"]}
    assert chat == {"chatty": True, "raw": False}
    # without the cache nothing is claimed identical and no rationale is shown
    bare = collect(view_run, data_dir, use_cache=False)
    assert bare["verified"] == 0


def test_item_view_in_headless_chromium(view_run: Path, data_dir: Path, tmp_path: Path) -> None:
    if browser.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    from labelbench.data import load_comparisons
    from labelbench.rundir import read_results as load_results
    from labelbench.view.page import write_view

    page = write_view(view_run, data_dir, out=tmp_path, cache_dir=view_run.parent / "cache")
    assert page == tmp_path / "items.html"
    result = browser.probe_page(page, PROBE)
    assert result.console == []
    seen = result.value
    frame = load_results(view_run)
    assert seen["total"] == len(frame) == 16
    expected = _expected(frame)
    for name, rows in expected.items():
        assert seen["filters"][name] == len(rows), name
        assert set(seen["filters"][f"{name}_ids"]) == rows, name
    assert len(expected["unscored"]) == 1
    assert seen["raw"] == seen["cot"] == 8 and seen["tldr"] == 16
    confidence = np.abs(frame["ai_pref_a"].to_numpy(float) - 0.5)
    ranked = [np.nan_to_num(confidence[k], nan=-1) for k in seen["sorted"]]
    assert ranked == sorted(ranked, reverse=True)
    # the opened row: the data's texts, and the prompt in both orders as the labeler saw it
    row = frame.iloc[seen["row"]]
    source = data_dir / "openai_tldr_comparisons/batch13.json"
    comparisons = {c.id: c for c in load_comparisons(source)}
    item = comparisons[row["item_id"]]
    assert seen["texts"] == [item.context, item.response_a, item.response_b]
    assert [order for order, _ in seen["prompts"]] == ["AB", "BA"]
    first, second = (text for _, text in seen["prompts"])
    assert first.index(item.response_a) < first.index(item.response_b)
    assert second.index(item.response_b) < second.index(item.response_a)
    chat_header = "<|user|>\n"  # the tiny tokenizer's chat template (test_prompt_golden)
    assert first.startswith(chat_header) == second.startswith(chat_header) == seen["chatty"]
    assert ("<|assistant|>" in first) == seen["chatty"]
    assert [cells[0][:2] for cells in seen["orders"]] == ["AB", "BA"]
    assert seen["orders"][0][1] == f"{row['ai_pref_a_ab']:.3f}"
    assert seen["orders"][1][1] == f"{row['ai_pref_a_ba']:.3f}"
    # the same item in the three other cells, and following a link opens that cell's row
    assert len(seen["links"]) == 3
    assert seen["followed"] and seen["shown_after_link"] == 1


def test_item_views_are_never_committed() -> None:
    """A page with data texts in a report folder is git-ignored."""
    done = subprocess.run(
        ["git", "check-ignore", "reports/ladder/items.html", "reports/benchmark/items.html"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 128:
        pytest.skip("not a git checkout")
    assert done.stdout.split() == ["reports/ladder/items.html", "reports/benchmark/items.html"]
    tracked = subprocess.run(
        ["git", "ls-files", "*items.html"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert tracked.stdout == ""


def test_view_without_config_is_one_line(tmp_path: Path) -> None:
    from labelbench.errors import InputError
    from labelbench.view.page import write_view

    pd.DataFrame(
        {
            "dataset": ["d"],
            "labeler": ["l"],
            "variant": ["v"],
            "item_id": ["1"],
            "group_id": ["1"],
            "ai_pref_a": [0.5],
            "human_pref_a": [1.0],
            "len_a": [1.0],
            "len_b": [2.0],
        }
    ).to_parquet(tmp_path / "results.parquet")
    with pytest.raises(InputError) as caught:
        write_view(tmp_path)
    assert "config.yaml" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_item_view_opens_on_the_committed_ladder(data_dir: Path, tmp_path: Path) -> None:
    """reports/ladder with the data folder: every text found, the page loads without errors."""
    if browser.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    from labelbench.view.page import write_view

    page = write_view(REPO / "reports" / "ladder", data_dir, out=tmp_path)
    script = """document.addEventListener("labelbench-view-ready", () => window.labelbenchProbe(
      {total: +document.getElementById("count").dataset.shown,
       status: document.getElementById("status").textContent}));"""
    result = browser.probe_page(page, script, timeout=300)
    assert result.console == []
    rows = len(pd.read_parquet(REPO / "reports" / "ladder" / "results.parquet"))
    assert rows > 8000 and result.value["total"] == rows  # every results row, one item view row
    assert "not found in the data folder" not in json.dumps(result.value)


def test_view_command_errors_are_one_line(
    view_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labelbench.cli import app, run_app

    code = run_app(app, ["view", str(view_run), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no such file in" in err and len(err.strip().splitlines()) == 1
    code = run_app(app, ["view", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "no such folder" in err and "Traceback" not in err
