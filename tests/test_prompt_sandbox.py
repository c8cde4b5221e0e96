"""Templates are rendered in Jinja2's immutable sandbox: no route to Python internals."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError
from test_prompt_golden import PAIRS

from labelbench.errors import InputError
from labelbench.prompting import load_variant, plan
from labelbench.prompting.render import render

ESCAPES = [
    "{{ context.__class__ }}",
    "{{ context.__class__.__mro__[1].__subclasses__() }}",
    "{{ meta.__class__.__base__ }}",
    "{{ meta|attr('__class__') }}",
    "{{ meta.get.__self__.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ context.format.__globals__ }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ meta.update({'owned': 1}) }}",
    "{{ meta.clear() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_attribute_and_dunder_escapes_fail_at_render(source: str) -> None:
    meta = {"title": "t"}
    with pytest.raises((SecurityError, UndefinedError)):
        render(source, context="text", meta=meta)
    assert meta == {"title": "t"}


@pytest.mark.parametrize("source", ESCAPES)
def test_a_variant_with_an_escape_is_rejected_at_load(tmp_path: Path, source: str) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(
        f"include: summarization/base-0shot\ntemplates:\n  context: {source!r}\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as caught:
        load_variant(path)
    assert caught.value.source == str(path)
    assert caught.value.field == "templates.context"


def test_data_that_looks_like_a_template_is_printed_not_run() -> None:
    pair = PAIRS["summarization"].model_copy(
        update={"context": "{{ 7*7 }} {% for x in y %}", "response_a": "{{ ''.__class__ }}"}
    )
    request = plan([pair], "summarization/base-0shot").requests[0].request
    assert "{{ 7*7 }} {% for x in y %}" in request.context
    assert "{{ ''.__class__ }}" in request.tail


def test_plain_rendering_still_works() -> None:
    assert (
        render(
            "{{ meta.get('title') | upper }}: {{ context | trim }}",
            meta={"title": "t"},
            context=" x ",
        )
        == "T: x"
    )
    assert load_variant("summarization/base-0shot").spec.shots == 0
