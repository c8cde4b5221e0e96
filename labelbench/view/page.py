"""The item view as one self-contained HTML page: the data gzip-compressed and base64-encoded in
the page, filtered, sorted and shown by a script in it. Texts are set as text (never as markup),
and the page loads nothing from elsewhere.

The page embeds the run's texts (read from the data folder), so it is written into the run
folder or where the user names, and ``items.html`` is git-ignored: committed reports never carry
data texts.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from labelbench.rundir import ITEMS_HTML

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 10px;
  color: #1d1d1d; }
h1 { font-size: 22px; margin: 14px 0 4px; }
.note { color: #555; margin: 2px 0; }
#controls { position: sticky; top: 0; background: #f6f7f9; border-bottom: 1px solid #ccd;
  padding: 8px; display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; z-index: 2; }
#controls label { white-space: nowrap; }
#controls input[type=number] { width: 4.5em; }
#count { font-weight: 600; }
details.row { border: 1px solid #dde; border-radius: 4px; margin: 6px 0; }
details.row > summary { cursor: pointer; padding: 5px 8px; list-style-position: inside; }
details.row[open] > summary { background: #eef2f8; }
details.row:target { outline: 2px solid #2266cc; }
.body { padding: 6px 12px 10px; }
.tag { display: inline-block; font-size: 12px; padding: 0 5px; border-radius: 3px; margin-left: 4px;
  background: #e6e6e6; }
.tag.disagree { background: #f6d5d5; } .tag.agree { background: #d8efd8; }
.tag.sameslot { background: #f3e3c0; } .tag.unscored { background: #ddd; color: #444; }
.tag.confident { background: #e9b4b4; } .tag.gap { background: #dbe4f5; }
pre { white-space: pre-wrap; word-break: break-word; background: #fafafa; border: 1px solid #e2e2e2;
  padding: 6px; max-height: 26em; overflow: auto; font-size: 13px; margin: 4px 0 10px; }
pre .shared { background: #eef3ff; } pre .context { background: #fff; }
pre .tail { background: #fff6e6; } pre .rationale { background: #e9f7e9; }
table.figs { border-collapse: collapse; margin: 4px 0 10px; }
table.figs td, table.figs th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
h3 { font-size: 15px; margin: 10px 0 2px; }
.others a { margin-right: 12px; }
button { font: inherit; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="note">{{ subtitle }}</p>
<p class="note" id="status">Loading the items...</p>
<noscript><p>This page needs JavaScript to show its items.</p></noscript>
<div id="controls">
<label>data set <select id="f-dataset"></select></label>
<label>labeler <select id="f-labeler"></select></label>
<label>variant <select id="f-variant"></select></label>
<label>item id <input id="f-item" type="search" size="14"></label>
<label><input type="checkbox" id="f-disagree"> disagrees with humans</label>
<label><input type="checkbox" id="f-sameslot"> same slot in both orders</label>
<label><input type="checkbox" id="f-gap"> length gap &gt;
  <input type="number" id="v-gap" min="0" max="1" step="0.05"></label>
<label><input type="checkbox" id="f-confident"> confident mistake, |P(A)&minus;0.5| &ge;
  <input type="number" id="v-confident" min="0" max="0.5" step="0.05"></label>
<label><input type="checkbox" id="f-unscored"> unscored</label>
<label>sort <select id="sort">
  <option value="item">data set, labeler, variant, item</option>
  <option value="confidence">confidence |P(A)&minus;0.5|, highest first</option>
  <option value="disagreement">disagreement |P(A)&minus;human|, largest first</option>
</select></label>
<span id="count" data-shown="0" data-total="0"></span>
</div>
<div id="list"></div>
<p><button id="more" hidden>show more</button></p>
<script id="labelbench-items" type="application/octet-stream">{{ payload }}</script>
<script>
"use strict";
(function () {
const $ = (id) => document.getElementById(id);
const PAGE = 100;
const TIE = 1e-8 + 1e-5 * 0.5;  // an AI tie, as numpy.isclose(p, 0.5) in labelbench.metrics
let D = null, rows = [], shown = PAGE, filtered = [];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}
const S = (i) => (i == null ? null : D.strings[i]);
const fmt = (x, d = 2) => (x == null ? "n/a" : x.toFixed(d));
const signed = (x) => (x == null ? "n/a" : (x >= 0 ? "+" : "\u2212") + Math.abs(x).toFixed(2));
function humanWord(h) {
  if (h == null) return "none";
  if (Math.abs(h - 0.5) <= TIE) return "tie";
  return h > 0.5 ? "A" : "B";
}
function slotOf(r) {
  if (r.p_ab == null || r.p_ba == null) return null;
  if (r.p_ab > 0.5 && r.p_ba < 0.5) return "first";
  if (r.p_ab < 0.5 && r.p_ba > 0.5) return "second";
  return null;
}
function prepare() {
  rows = D.rows.map((r, k) => {
    const item = D.items[r.item], cell = D.cells[r.cell], h = item.human;
    const label = h == null || Math.abs(h - 0.5) <= TIE ? null : (h > 0.5 ? 1 : 0);
    const decided = r.p != null && Math.abs(r.p - 0.5) > TIE;
    const la = item.len_a, lb = item.len_b;
    return Object.assign({}, r, {
      k, itemObj: item, cellObj: cell, label,
      unscored: r.p == null,
      disagree: decided && label != null && (r.p > 0.5 ? 1 : 0) !== label,
      agree: decided && label != null && (r.p > 0.5 ? 1 : 0) === label,
      slot: slotOf(r),
      gap: la && lb ? Math.abs(la - lb) / Math.max(la, lb) : null,
    });
  });
}
function options(select, values) {
  select.append(el("option", {value: "", text: "all"}));
  for (const v of values) select.append(el("option", {value: v, text: v}));
}
function unique(key) {
  return [...new Set(D.cells.map((c) => c[key]))];
}
function matches(r) {
  const c = r.cellObj;
  if ($("f-dataset").value && c.dataset !== $("f-dataset").value) return false;
  if ($("f-labeler").value && c.labeler !== $("f-labeler").value) return false;
  if ($("f-variant").value && c.variant !== $("f-variant").value) return false;
  const q = $("f-item").value.trim();
  if (q && !r.itemObj.id.includes(q)) return false;
  if ($("f-disagree").checked && !r.disagree) return false;
  if ($("f-sameslot").checked && !r.slot) return false;
  if ($("f-gap").checked && !(r.gap != null && r.gap > parseFloat($("v-gap").value))) return false;
  if ($("f-confident").checked && !(r.disagree
      && Math.abs(r.p - 0.5) >= parseFloat($("v-confident").value))) return false;
  if ($("f-unscored").checked && !r.unscored) return false;
  return true;
}
function sortKey(r) {
  const by = $("sort").value;
  if (by === "confidence") return r.p == null ? -1 : Math.abs(r.p - 0.5);
  if (by === "disagreement") {
    const h = r.itemObj.human;
    return r.p == null || h == null ? -1 : Math.abs(r.p - h);
  }
  return 0;
}
function tags(r) {
  const out = [];
  const add = (cls, text) => out.push(el("span", {class: "tag " + cls, text}));
  if (r.unscored) add("unscored", "unscored");
  else if (r.disagree) add("disagree", "disagrees");
  else if (r.agree) add("agree", "agrees");
  if (r.disagree && Math.abs(r.p - 0.5) >= parseFloat($("v-confident").value))
    add("confident", "confident mistake");
  if (r.slot) add("sameslot", r.slot + " slot in both orders");
  if (r.gap != null && r.gap > parseFloat($("v-gap").value))
    add("gap", "length gap " + Math.round(100 * r.gap) + "%");
  return out;
}
function summaryLine(r) {
  const c = r.cellObj, item = r.itemObj;
  return el("summary", {},
    el("b", {text: c.dataset}), " \u00b7 " + c.labeler + " \u00b7 " + c.variant + " \u00b7 item ",
    el("code", {text: item.id}),
    " \u00b7 P(A) " + fmt(r.p) + " \u00b7 human " + humanWord(item.human), ...tags(r));
}
function textBlock(title, index) {
  const text = S(index);
  return [el("h3", {text: title}),
    el("pre", {class: "text"}, text == null ? "(not found in the data folder)" : text)];
}
function promptBlock(r, prompt) {
  const c = r.cellObj;
  const where = prompt.order === "AB" ? "A shown first" : "A shown second (B first)";
  const mode = c.chat ? "chat template on" : "raw text, no chat template";
  const check = prompt.verified ? "identical to the text scored (its label is in the cache)"
    : "not in the label cache here: rendered again as the run renders it";
  const pre = el("pre", {class: "prompt", "data-order": prompt.order});
  const names = ["shared", "context", "tail"];
  prompt.parts.forEach((part, i) => pre.append(el("span", {class: names[i], text: S(part)})));
  const out = [el("h3", {text: "Prompt, order " + prompt.order + " (" + where + "), " + mode}),
    el("p", {class: "note", text: check + ". Answers " + prompt.answers.join("/")
      + (prompt.sampling ? "; step 1 samples a rationale (" + prompt.sampling + ")" : "")})];
  out.push(pre);
  if (prompt.rationales) {
    prompt.rationales.forEach((rationale, i) => {
      out.push(el("h3", {text: "Rationale " + (i + 1) + " (order " + prompt.order
        + "), then the score suffix"}));
      const block = el("pre", {class: "rationale-block"});
      block.append(el("span", {class: "rationale",
        text: rationale == null ? "(not stored in the label cache here)" : S(rationale)}));
      block.append(el("span", {class: "tail", text: S(prompt.score_suffix)}));
      out.push(block);
    });
  }
  return out;
}
function figures(r) {
  const table = el("table", {class: "figs"});
  table.append(el("tr", {}, el("th", {text: "order"}), el("th", {text: "P(A)"}),
    el("th", {text: "log-odds of A"}), el("th", {text: "slot preferred"})));
  const slot = (p, first) => p == null ? "n/a" : Math.abs(p - 0.5) <= TIE ? "none"
    : (p > 0.5) === first ? "first" : "second";
  table.append(el("tr", {"data-order": "AB"}, el("td", {text: "AB (A first)"}),
    el("td", {text: fmt(r.p_ab, 3)}), el("td", {text: signed(r.lo_ab)}),
    el("td", {text: slot(r.p_ab, true)})));
  table.append(el("tr", {"data-order": "BA"}, el("td", {text: "BA (A second)"}),
    el("td", {text: fmt(r.p_ba, 3)}), el("td", {text: signed(r.lo_ba)}),
    el("td", {text: slot(r.p_ba, false)})));
  table.append(el("tr", {}, el("td", {text: "both (soft label)"}),
    el("td", {text: fmt(r.p, 3)}), el("td", {text: ""}), el("td", {text: r.slot || "-"})));
  if (!r.lo_exact && (r.lo_ab != null || r.lo_ba != null))
    return el("div", {}, table, el("p", {class: "note",
      text: "Log-odds recovered from P(A) with the logit: this run's results predate the "
        + "stored log-odds."}));
  return table;
}
function humanBlock(item) {
  const parts = ["human preference for A " + fmt(item.human) + " (" + humanWord(item.human) + ")"];
  if (item.annotators.length)
    parts.push("annotators: " + item.annotators.map((a) => fmt(a)).join(", "));
  if (item.confidence != null) parts.push("TL;DR confidence " + item.confidence);
  for (const [name, p] of Object.entries(item.judges)) parts.push(name + " P(A) " + fmt(p));
  parts.push("lengths A " + item.len_a + ", B " + item.len_b + " characters");
  return el("p", {class: "human", text: parts.join("; ")});
}
function others(r) {
  const box = el("p", {class: "others"}, "Same item in other cells: ");
  const same = rows.filter((o) => o.item === r.item && o.k !== r.k);
  if (!same.length) box.append("none");
  for (const o of same) {
    const word = o.unscored ? "unscored" : o.disagree ? "disagrees" : o.agree ? "agrees" : "tie";
    box.append(el("a", {href: "#r" + o.k,
      text: o.cellObj.labeler + " / " + o.cellObj.variant + ": P(A) " + fmt(o.p) + ", " + word}));
  }
  return box;
}
function fill(node, r) {
  const body = el("div", {class: "body"});
  if (r.cellObj.note) body.append(el("p", {class: "note", text: "Note: " + r.cellObj.note}));
  body.append(others(r), humanBlock(r.itemObj), figures(r));
  body.append(...textBlock("Context", r.itemObj.context));
  body.append(...textBlock("Response A (" + r.itemObj.len_a + " characters)", r.itemObj.a));
  body.append(...textBlock("Response B (" + r.itemObj.len_b + " characters)", r.itemObj.b));
  if (!r.prompts.length) body.append(el("p", {class: "note", text: "No prompt to show."}));
  for (const prompt of r.prompts) body.append(...promptBlock(r, prompt));
  node.append(body);
}
function rowNode(r) {
  const node = el("details", {class: "row", id: "r" + r.k});
  node.append(summaryLine(r));
  node.addEventListener("toggle", () => {
    if (node.open && !node.querySelector(".body")) fill(node, r);
  });
  return node;
}
function render() {
  filtered = rows.filter(matches);
  if ($("sort").value !== "item") {
    filtered = filtered.map((r) => [sortKey(r), r]).sort((x, y) => y[0] - x[0] || x[1].k - y[1].k)
      .map((x) => x[1]);
  }
  const list = $("list");
  list.replaceChildren(...filtered.slice(0, shown).map(rowNode));
  const count = $("count");
  count.dataset.shown = String(filtered.length);
  count.dataset.total = String(rows.length);
  count.textContent = filtered.length + " of " + rows.length + " labels";
  $("more").hidden = filtered.length <= shown;
}
function reset() { shown = PAGE; render(); }
function focus() {
  const m = /^#r(\d+)$/.exec(location.hash);
  if (!m || !rows[+m[1]]) return;
  const r = rows[+m[1]];
  if (!filtered.includes(r) || filtered.indexOf(r) >= shown) {
    for (const id of ["f-disagree", "f-sameslot", "f-gap", "f-confident", "f-unscored"])
      $(id).checked = false;
    $("f-dataset").value = r.cellObj.dataset;
    $("f-labeler").value = r.cellObj.labeler;
    $("f-variant").value = r.cellObj.variant;
    $("f-item").value = r.itemObj.id;
    reset();
  }
  const node = $("r" + r.k);
  if (node) { node.open = true; node.scrollIntoView(); }
}
async function load() {
  const raw = $("labelbench-items").textContent.trim();
  const bytes = Uint8Array.from(atob(raw), (ch) => ch.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}
load().then((data) => {
  D = data;
  prepare();
  options($("f-dataset"), D.datasets);
  options($("f-labeler"), unique("labeler"));
  options($("f-variant"), unique("variant"));
  $("v-gap").value = String(D.length_gap);
  $("v-confident").value = String(D.confident);
  for (const id of ["f-dataset", "f-labeler", "f-variant", "f-disagree", "f-sameslot", "f-gap",
    "f-confident", "f-unscored", "v-gap", "v-confident", "sort"])
    $(id).addEventListener("change", reset);
  $("f-item").addEventListener("input", reset);
  $("more").addEventListener("click", () => { shown += PAGE; render(); });
  window.addEventListener("hashchange", focus);
  const facts = [D.rows.length + " labels of " + D.items.length + " items in " + D.cells.length
    + " cells"];
  facts.push(D.prompts ? D.verified + " of " + D.prompts
    + " prompts found in the label cache (identical to the text scored)"
    : "no prompts rendered");
  if (D.missing_texts) facts.push(D.missing_texts + " items not found in the data folder");
  $("status").textContent = facts.join("; ") + ".";
  render();
  focus();
  document.body.dataset.ready = "1";
  document.dispatchEvent(new Event("labelbench-view-ready"));
}).catch((error) => {
  $("status").textContent = "Cannot read the items: " + error;
});
})();
</script>
</body>
</html>
"""


def encode(data: dict[str, Any]) -> str:
    """The view's data as base64 of gzip-compressed JSON (deterministic: no timestamp)."""
    raw = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return base64.b64encode(gzip.compress(raw.encode("utf-8"), mtime=0)).decode("ascii")


def render_page(data: dict[str, Any]) -> str:
    """The self-contained page for ``data`` (``labelbench.view.collect.collect``)."""
    env = SandboxedEnvironment(autoescape=True)
    title = f"labelbench items: {data['run']}"
    subtitle = (
        f"Texts read from the data folder; prompts rendered as the run rendered them (seed "
        f"{data['seed']}). P(A) is the labeler's probability that response A is better; the "
        "log-odds of A in each order come from the answer tokens' log-probabilities. This page "
        "holds data texts: do not commit it."
    )
    return env.from_string(TEMPLATE).render(title=title, subtitle=subtitle, payload=encode(data))


def write_view(
    run_dir: Path,
    data_dir: Path | None = None,
    *,
    out: Path | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> Path:
    """Write the item view of the run in ``run_dir`` to ``out`` (default
    ``RUN_DIR/items.html``); returns its path. Raises InputError (one line naming the folder or
    file) when the run, its config or a data file is missing or the page cannot be written."""
    from labelbench.errors import InputError
    from labelbench.view.collect import collect

    target = Path(out) if out is not None else Path(run_dir) / ITEMS_HTML
    if target.is_dir():
        target = target / ITEMS_HTML
    data = collect(Path(run_dir), data_dir, cache_dir=cache_dir, use_cache=use_cache)
    try:
        target.write_text(render_page(data), encoding="utf-8")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InputError(target, f"cannot write the item view ({reason})") from None
    return target
