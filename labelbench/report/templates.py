"""The Jinja templates of report.md and report.html (``labelbench.report.render`` fills them)."""

MARKDOWN = """# {{ title }}
{% if provenance %}
Made by `{{ provenance.command }}` in {{ "%.0f"|format(provenance.wall_seconds / 60) }} min of \
wall time, {{ "%.0f"|format(100 * provenance.cached_share) }}% of the labels read from the \
cache ({{ provenance.machine }}).{% endif %}{% if compute %} The labels took {{ compute }} of \
compute, as recorded when each was computed (the label cache keeps these seconds).{% endif %}

Contents: [best cell](#best-labeler-cell-winnerjson) · [verdicts](#verdicts)\
{% for d in datasets %} · [{{ d.name }}](#{{ d.md_anchor }}){% endfor %} · [figures](#figures) · \
[notes](#notes)

Reference variant: `{{ settings.reference_variant }}`; seed {{ settings.seed }}; \
{{ settings.bootstrap }} bootstrap resamples by `{{ settings.bootstrap_unit }}`.

## Best labeler cell (winner.json)

{% if winner.labeler -%}
**{{ winner.labeler }}** with **{{ winner.variant }}**: \
mean accuracy {{ "%.3f"|format(winner.alignment) }} \
over {{ winner.per_dataset|length }} data set(s) ({{ winner.candidates }} candidate(s)\
{% if budget_limits %}, cost budget {{ budget(budget_limits) }}{% endif %}).
{%- if winner_baselines %} {{ winner_baselines }}{% endif %}
{%- if winner_aggregation %} {{ winner_aggregation }}{% endif %}
{%- else -%}
No winner: {{ winner.reason }}.
{%- endif %}
{% if labelers %}
Labelers: {% for name, info in labelers.items() %}{{ name }} \
({{ size(info.parameters) }}){% if not loop.last %}, {% endif %}{% endfor %}.
{% endif %}
## Verdicts

{{ table(verdict_columns, verdicts) }}
{% for d in datasets %}{% for line in d.verdict %}
- {{ line }}{% endfor %}{% endfor %}
{% for d in datasets %}
## {{ d.name }}

{{ d.entry.n_items }} items, {{ d.entry.human_ties }} human ties; \
humans prefer the longer response in {{ d.human_longer }} of pairs with a clear length gap; \
human ceiling {{ d.ceiling }}.{% if d.family %} Variants: `{{ d.family }}…`.{% endif %}

{{ table(*d.alignment, best=d.best.alignment) }}

Biases, calibration and cost:

{{ table(*d.biases, best=d.best.biases) }}

Why each cell fails:
{% for line in d.failures %}
- {{ line }}{% endfor %}
{% if d.confidence %}
Accuracy by human confidence (TL;DR's 1-9 scale, "1,9" = most confident) or by \
annotator agreement (unanimous or split):

{{ table(d.confidence_header, d.confidence, best=d.best.confidence) }}
{% endif %}{% if d.aggregations %}
Soft labels by aggregation (`labelbench.aggregate`; methods that need human labels are \
cross-fitted by group, so each pair is scored by a fit on other groups):

{{ table(aggregation_columns, d.aggregations, best=d.best.aggregations) }}
{% for line in d.aggregation_lines %}
- {{ line }}{% endfor %}
{% endif %}{% endfor %}
## Figures

The best cell of each data set (highest accuracy) is in bold in its tables.
{% for name, file in plots.items() %}
### {{ titles[name] }}

{% if file %}![{{ titles[name] }}]({{ file }})

{{ captions.get(name, "") }}{% else %}Not applicable to this run.{% endif %}
{% endfor %}
## Notes
{% for note in notes %}
- {{ note }}{% endfor %}
"""

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<link rel="icon" href="data:,">
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
td { white-space: nowrap; }
td small { color: #555; font-size: 11px; }
td small.note { white-space: normal; display: inline-block; min-width: 8em; }
th { background: #f0f0f0; }
table.verdicts td { white-space: normal; }
table.aggregations td:nth-child(2) { white-space: normal; }
ul.verdict { margin: 0.4em 0; }
tr.baseline td { color: #666; }
tr.best td { background: #fff1b8; font-weight: 600; }
nav#contents ul { margin: 0.3em 0; }
.scroll { overflow-x: auto; }
img { max-width: 100%; border: 1px solid #eee; }
figure { margin: 1.5em 0; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{% if provenance %}Made by <code>{{ provenance.command }}</code> in
{{ "%.0f"|format(provenance.wall_seconds / 60) }} min of wall time,
{{ "%.0f"|format(100 * provenance.cached_share) }}% of the labels read from the cache
({{ provenance.machine }}).{% endif %}{% if compute %} The labels took <b>{{ compute }}</b> of
compute, as recorded when each was computed (the label cache keeps these seconds).{% endif %}</p>
<p>Reference variant <code>{{ settings.reference_variant }}</code>; seed {{ settings.seed }};
{{ settings.bootstrap }} bootstrap resamples by <code>{{ settings.bootstrap_unit }}</code>.</p>
<nav id="contents"><h2>Contents</h2>
<ul>
<li><a href="#winner">Best labeler cell</a></li>
<li><a href="#verdicts">Verdicts</a></li>
{% for d in datasets %}<li><a href="#{{ d.anchor }}">Data set {{ d.name }}</a></li>
{% endfor %}<li><a href="#figures">Figures</a>: {% for name in images %}<a
href="#{{ name }}">{{ titles[name] }}</a>{% if not loop.last %} · {% endif %}{% endfor %}</li>
<li><a href="#notes">Notes</a></li>
</ul>
<p>The best cell of each data set (highest accuracy) is highlighted in its tables.</p></nav>
<h2 id="winner">Best labeler cell (winner.json)</h2>
{% if winner.labeler %}
<p><b>{{ winner.labeler }}</b> with <b>{{ winner.variant }}</b>: mean accuracy
{{ "%.3f"|format(winner.alignment) }} over {{ winner.per_dataset|length }} data set(s)
({{ winner.candidates }} candidate(s){% if budget_limits %}, cost budget
{{ budget(budget_limits) }}{% endif %}).{% if winner_baselines %}
{{ winner_baselines }}{% endif %}{% if winner_aggregation %}
{{ winner_aggregation|replace("**", "") }}{% endif %}</p>
{% else %}<p>No winner: {{ winner.reason }}.</p>{% endif %}
{% if labelers %}<p>Labelers: {% for name, info in labelers.items() %}{{ name }}
({{ size(info.parameters) }}){% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
<h2 id="verdicts">Verdicts</h2>
<div class="scroll"><table class="verdicts main">
<tr>{% for c in verdict_columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in verdicts %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% for d in datasets %}<ul class="verdict">{% for line in d.verdict %}<li>{{ line }}</li>
{% endfor %}</ul>{% endfor %}
{% for d in datasets %}
<h2 id="{{ d.anchor }}">{{ d.name }}</h2>
<p>{{ d.entry.n_items }} items, {{ d.entry.human_ties }} human ties; humans prefer the longer
response in {{ d.human_longer }} of pairs with a clear length gap;
human ceiling {{ d.ceiling }}.
{%- if d.family %} Variants: <code>{{ d.family }}…</code>.{% endif %}</p>
{% for (columns, rows), best in ((d.alignment, d.best.alignment), (d.biases, d.best.biases)) %}
<div class="scroll"><table>
<tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}
<tr{% if loop.index0 == best %} class="best"{% elif row[0] in ("baseline", "human ceiling")
%} class="baseline"{% endif %}>
{% for v in row %}<td>{{ two_lines(v) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endfor %}
<p>Why each cell fails:</p>
<ul class="verdict failures">{% for line in d.failures %}<li>{{ line }}</li>{% endfor %}</ul>
{% if d.confidence %}
<p>Accuracy by human confidence (TL;DR's 1-9 scale, "1,9" = most confident) or by \
annotator agreement (unanimous or split):</p>
<div class="scroll"><table>
<tr>{% for c in d.confidence_header %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in d.confidence %}<tr{% if loop.index0 == d.best.confidence %} class="best"{%
endif %}>{% for v in row %}<td>{{ two_lines(v) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endif %}{% if d.aggregations %}
<p>Soft labels by aggregation (methods that need human labels are cross-fitted by group, so
each pair is scored by a fit on other groups):</p>
{% for keep in aggregation_splits %}
<div class="scroll"><table class="aggregations">
<tr>{% for i in keep %}<th>{{ aggregation_columns[i] }}</th>{% endfor %}</tr>
{% for row in d.aggregations %}<tr{% if loop.index0 == d.best.aggregations %} class="best"{%
endif %}>
{%- for i in keep %}<td>{{ two_lines(row[i]) }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% endfor %}
<ul class="verdict">{% for line in d.aggregation_lines %}<li>{{ line }}</li>{% endfor %}</ul>
{% endif %}{% endfor %}
<h2 id="figures">Figures</h2>
{% for name, data in images.items() %}
<figure id="{{ name }}">
<figcaption><h3>{{ titles[name] }}</h3></figcaption>
{% if data %}<img alt="{{ titles[name] }}" src="data:image/png;base64,{{ data }}">
<p>{{ captions.get(name, "") }}</p>
{% else %}<p>Not applicable to this run.</p>{% endif %}
</figure>
{% endfor %}
<h2 id="notes">Notes</h2>
<ul>{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
</body>
</html>
"""
