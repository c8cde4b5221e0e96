"""YAML reading shared by the run config (``labelbench.config``) and the prompt variants
(``labelbench.prompting.variants``): a strict pydantic base for settings read from YAML, and the
YAML node positions their error messages point at (line of a key path, keys given twice, keys
YAML reads as yes/no).

It sits below both, so neither has to import the other for these checks.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def field_types(annotation: object) -> set[object]:
    """The plain types a field annotation is made of (``int | None`` -> {int, NoneType})."""
    args = typing.get_args(annotation)
    return set().union(*(field_types(arg) for arg in args)) if args else {annotation}


class StrictYamlModel(BaseModel):
    """Settings read from YAML (run configs, prompt variants): unknown keys are errors, and a
    number field refuses YAML's yes/no values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        """YAML reads yes/no/true/false as booleans, which pydantic would take for 1 and 0
        (``sample: true`` would draw one item); a number field refuses them."""
        if isinstance(value, bool) and info.field_name is not None:
            types = field_types(cls.model_fields[info.field_name].annotation)
            if bool not in types and types & {int, float}:
                raise ValueError(f"expected a number, not the yes/no value {str(value).lower()}")
        return value


# ---------------------------------------------------------------------------- YAML positions


def key_path(loc: Sequence[str | int]) -> str:
    """``loc`` written as a key path: ``("labelers", 1, "backend")`` -> ``labelers[1].backend``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its nearest existing parent."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for depth, part in enumerate(loc):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    last = depth == len(loc) - 1
                    # a block value starts on the line after its key; point at the key then
                    child = key if last and not isinstance(value, yaml.ScalarNode) else value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part >= 0:
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            return line
        node = child
        line = node.start_mark.line + 1
    return line


def _mappings(
    node: yaml.Node | None, loc: tuple[str | int, ...] = (), visited: set[int] | None = None
) -> Iterator[tuple[tuple[str | int, ...], list[tuple[yaml.Node, yaml.Node]]]]:
    """Every mapping under ``node`` (itself included) with its key path, parents first: its
    (key, value) nodes. An aliased node is visited once, so a recursive one ends."""
    visited = set() if visited is None else visited
    if node is None or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        yield loc, node.value
        for key, value in node.value:
            yield from _mappings(value, (*loc, str(key.value)), visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            yield from _mappings(value, (*loc, index), visited)


def repeated_yaml_key(node: yaml.Node | None) -> tuple[tuple[str | int, ...], int, int] | None:
    """A mapping key given twice under ``node``: its key path, the 1-based line of the repeat
    and of the first one; None when every key is given once. (YAML itself keeps the last value
    without a word.)"""
    for loc, pairs in _mappings(node):
        seen: dict[str, int] = {}
        for key, _ in pairs:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    return (*loc, key.value), key.start_mark.line + 1, seen[key.value]
                seen[key.value] = key.start_mark.line + 1
    return None


def yes_no_yaml_key(node: yaml.Node | None) -> tuple[tuple[str | int, ...], int, str] | None:
    """A mapping key that YAML reads as a yes/no value (``true``, ``no``, ``on``, ...): its key
    path, 1-based line and text; None when there is none. Such a key becomes a Python bool, the
    same dict key as 1 or 0, so a label map ``{1: A, true: B}`` silently keeps one entry."""
    for loc, pairs in _mappings(node):
        for key, _ in pairs:
            if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:bool":
                return (*loc, key.value), key.start_mark.line + 1, key.value
    return None
