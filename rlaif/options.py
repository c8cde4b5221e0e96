"""Command-line options generated from config dataclasses: each setting is written once.

A command declares a parameter typed with a config dataclass (``config: PPOConfig``);
``config_options`` replaces it with one ``--option`` per field of the dataclass (name, type,
default and the help in the field's ``metadata["help"]``) and hands the command a built instance.
A ``ValueError`` from the dataclass's checks becomes an ``InputError`` (one line, exit 2).
``add_arguments``/``from_arguments`` do the same for ``argparse`` scripts (``bench/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from labelbench.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


def _fields(config_type: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(config_type)
    return [(f, hints[f.name]) for f in dataclasses.fields(config_type) if f.init]


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return inspect.Parameter.empty


def flag(config_type: type, name: str) -> str:
    """The command-line option of ``config_type``'s field ``name`` (``save_every`` ->
    ``--save-every``). Raises KeyError for a name that is not one of its fields."""
    if name not in {f.name for f, _ in _fields(config_type)}:
        raise KeyError(f"{config_type.__name__} has no field {name!r}")
    return _flag(name)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _flags(field: dataclasses.Field, kind: Any) -> list[str]:
    name = _flag(field.name)
    aliases = list(field.metadata.get("aliases", ()))
    if kind is bool:
        return [f"{name}/--no-{field.name.replace('_', '-')}"]
    return [name, *aliases]


def config_options(func: F) -> F:
    """Decorator: every parameter of ``func`` annotated with a dataclass becomes that dataclass's
    fields as options; ``func`` is called with the built instance. Field names must not repeat
    across the dataclasses and the command's own parameters."""
    signature = inspect.signature(func, eval_str=True)
    hints = typing.get_type_hints(func, include_extras=True)
    params: list[inspect.Parameter] = []
    configs: dict[str, type] = {}
    for name, param in signature.parameters.items():
        kind = hints.get(name, param.annotation)
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            configs[name] = kind
            for field, field_type in _fields(kind):
                help_text = field.metadata.get("help", "")
                option = typer.Option(*_flags(field, field_type), help=help_text)
                params.append(
                    inspect.Parameter(
                        field.name,
                        inspect.Parameter.KEYWORD_ONLY,
                        default=_default(field),
                        annotation=Annotated[field_type, option],
                    )
                )
        else:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=kind))
    names = [p.name for p in params]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TypeError(f"{func.__name__}: options defined twice: {', '.join(repeated)}")

    def command(**values: Any) -> Any:
        for name, kind in configs.items():
            values[name] = build(kind, {f.name: values.pop(f.name) for f, _ in _fields(kind)})
        return func(**values)

    command.__name__, command.__doc__ = func.__name__, func.__doc__
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command  # type: ignore[return-value]


def build(config_type: type[C], values: dict[str, Any]) -> C:
    """``config_type(**values)``; a failed check (``ValueError``) is an ``InputError``, and so is
    a number that is not finite (nan, inf), which would pass every ``< 0`` check."""
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(_flag(name), f"must be a finite number, not {value}")
    try:
        return config_type(**values)
    except ValueError as error:
        # the configs' checks name their fields (batch_size); the user typed flags (--batch-size)
        names = "|".join(re.escape(f.name) for f, _ in _fields(config_type))
        message = re.sub(rf"(?<![-\w])({names})\b", lambda m: _flag(m.group(1)), str(error))
        raise InputError("options", message) from None


def add_arguments(
    parser: argparse.ArgumentParser, config_type: type, defaults: dict[str, Any] | None = None
) -> None:
    """One ``argparse`` option per field of ``config_type`` (scalars only), with ``defaults``
    overriding the dataclass's own."""
    defaults = defaults or {}
    for field, kind in _fields(config_type):
        default = defaults.get(field.name, _default(field))
        option = _flag(field.name)
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=default)
            continue
        origin = kind
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            origin = next(a for a in typing.get_args(kind) if a is not type(None))
        literal = typing.get_origin(origin) is typing.Literal
        choices = list(typing.get_args(origin)) if literal else None
        convert = type(choices[0]) if choices else origin
        parser.add_argument(option, type=convert, default=default, choices=choices, help=help_text)


def from_arguments(config_type: type[C], args: argparse.Namespace) -> C:
    """The ``config_type`` instance from parsed ``add_arguments`` options."""
    return build(config_type, {f.name: getattr(args, f.name) for f, _ in _fields(config_type)})
