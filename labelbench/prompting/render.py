"""The sandboxed Jinja2 renderer: templates see only the names they are given, no internals."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
)


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """Compile once; raises jinja2.TemplateSyntaxError on bad syntax."""
    return _ENV.from_string(source)


def names_used(source: str) -> set[str]:
    """The top-level names a template reads (raises jinja2.TemplateSyntaxError on bad syntax)."""
    return meta.find_undeclared_variables(_ENV.parse(source))


def render(source: str, **values: Any) -> str:
    """Render in the sandbox; an undefined name or an unsafe access raises a jinja2 error."""
    return compile_template(source).render(**values)
