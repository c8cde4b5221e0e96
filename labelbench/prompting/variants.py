"""Prompt variants as data: YAML composed with ``include:`` + overrides, checked at load time."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from jinja2.sandbox import SecurityError
from pydantic import Field, ValidationError, model_validator

from labelbench.data.record import TaskKind
from labelbench.errors import InputError, validation_problem
from labelbench.prompting.render import names_used, render
from labelbench.yamlio import StrictYamlModel, repeated_yaml_key

PROMPTS_PATH_ENV = "LABELBENCH_PROMPTS_PATH"
_PACKAGE = Path(__file__).resolve().parents[1]


def prompt_roots() -> list[Path]:
    """Where variants live: the built-in ``prompts/``, then the LABELBENCH_PROMPTS_PATH dirs."""
    bundled = _PACKAGE / "_prompts"
    roots = [bundled if bundled.is_dir() else _PACKAGE.parent / "prompts"]
    extra = os.environ.get(PROMPTS_PATH_ENV, "")
    roots += [Path(part) for part in extra.split(os.pathsep) if part]
    return roots


class _Strict(StrictYamlModel):
    pass


class Templates(_Strict):
    context: str
    candidates: str
    ending: str
    """Text right before the answer; empty: the answer is the first token of the reply."""
    cot_request: str
    rationale_cue: str
    exemplar: str
    exemplar_rationale: str


class DirectScore(_Strict):
    """Rate one response on 1..scale; scale <= 9 so that every answer is one digit (one token)."""

    instruction: str
    response: str
    ending: str = Field(min_length=1)
    scale: int = Field(9, ge=2, le=9)


class SelfConsistency(_Strict):
    n: int = Field(ge=2)
    temperature: float = Field(gt=0)
    top_k: int | None = Field(None, ge=1)


class ExemplarSpec(_Strict):
    id: str
    context: str
    meta: dict[str, Any] = Field(default_factory=dict)
    response_1: str
    response_2: str
    preferred: Literal[1, 2]
    rationale: str


class VariantSpec(_Strict):
    task: TaskKind
    description: str = ""
    answers: tuple[str, str] = ("1", "2")
    preambles: dict[str, str]
    templates: Templates
    direct_score: DirectScore
    exemplar_pool: tuple[ExemplarSpec, ...] = ()
    shorten: Literal["start", "end"] = "end"
    preamble: str
    shots: int = Field(0, ge=0)
    exemplar_rationales: bool = False
    cot: bool = False
    self_consistency: SelfConsistency | None = None
    position: Literal["both", "random", "fixed"] = "both"
    max_new_tokens: int = Field(128, ge=1)
    system: str | None = None
    """System message for chat labelers; None keeps the chat template's own default (Qwen2.5's
    and SmolLM2's templates insert an identity line of their own when none is given)."""

    @model_validator(mode="after")
    def _consistent(self) -> VariantSpec:
        if self.answers[0] == self.answers[1] or not all(a.strip() for a in self.answers):
            raise ValueError("answers must be two distinct non-empty strings")
        if self.self_consistency is not None and not self.cot:
            raise ValueError("self_consistency needs cot: true (it samples rationales)")
        return self

    @property
    def rationales_in_exemplars(self) -> bool:
        return self.cot or self.exemplar_rationales


@dataclass(frozen=True, eq=False)
class Variant:
    """A loaded, validated variant; ``files`` is its include chain, most derived first."""

    name: str
    source: Path
    spec: VariantSpec
    files: tuple[tuple[Path, dict[str, Any]], ...]

    def origin(self, field: str) -> Path:
        return _origin(self.files, field, self.source)

    def error(self, field: str, message: str) -> InputError:
        return InputError(self.origin(field), f"variant {self.name}: {message}", field=field)


def _origin(files: Sequence[tuple[Path, dict[str, Any]]], field: str, default: Path) -> Path:
    """The most derived file that sets ``field`` (a dotted path) or its nearest parent key."""
    keys = field.split(".")
    for depth in range(len(keys), 0, -1):
        for path, raw in files:
            if _has_path(raw, keys[:depth]):
                return path
    return default


def _has_path(raw: Any, keys: list[str]) -> bool:
    for key in keys:
        if not isinstance(raw, dict) or key not in raw:
            return False
        raw = raw[key]
    return True


def _variant_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.yaml") if not p.name.startswith("_"))


def _name_of(path: Path) -> str:
    for root in prompt_roots():
        try:
            relative = path.resolve().relative_to(root.resolve())
        except ValueError:
            continue
        return relative.with_suffix("").as_posix()
    return str(path)


def list_variants(task: str | None = None) -> list[str]:
    """Variant names, e.g. ``summarization/detailed-2shot-cot``; ``task``: a family or task kind."""
    names = sorted({_name_of(path) for root in prompt_roots() for path in _variant_files(root)})
    if task is None:
        return names
    return [n for n in names if n.split("/")[0] == task or load_variant(n).spec.task == task]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, or not a path at all
        return False


def _find(name: str, asked_by: Path | None) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and _is_file(candidate):
        return candidate
    for root in prompt_roots():
        path = root / f"{name}.yaml"
        if ".." not in Path(name).parts and _is_file(path):  # a name, not a way out of root
            return path
    close = difflib.get_close_matches(name, list_variants(), n=3)
    hint = (
        f"; did you mean {', '.join(close)}?" if close else "; `labelbench prompts list` shows them"
    )
    raise InputError(
        asked_by or name, f"unknown variant '{name}'{hint}", field="include" if asked_by else None
    )


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror or error}") from None
    try:
        data = yaml.safe_load(text)
        repeated = repeated_yaml_key(yaml.compose(text))
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        raise InputError(path, f"invalid YAML: {error.problem}", line=line) from None
    except yaml.YAMLError as error:
        raise InputError(path, f"invalid YAML: {error}") from None
    if repeated:
        loc, line, first = repeated
        field = ".".join(str(part) for part in loc)
        raise InputError(path, f"given twice (first on line {first})", line=line, field=field)
    return data


def _resolve_files(value: Any, path: Path, field: str = "") -> Any:
    """Replace each ``{file: name}`` with the named .txt file's text or .yaml file's data."""
    if isinstance(value, dict) and set(value) == {"file"}:
        target = path.parent / str(value["file"])
        if not target.is_file():
            raise InputError(path, f"file not found: {target}", field=field or None)
        if target.suffix in (".yaml", ".yml"):
            return _resolve_files(_read_yaml(target), target, field)
        return target.read_text(encoding="utf-8")
    if isinstance(value, dict):
        return {
            k: _resolve_files(v, path, f"{field}.{k}" if field else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_files(v, path, field) for v in value]
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_chain(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The file and everything it includes, most derived first, each with {file:} resolved."""
    if path.resolve() in seen:
        cycle = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise InputError(path, f"include cycle: {cycle}", field="include")
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(path, "a variant file must be a YAML mapping")
    raw = _resolve_files(raw, path)
    include = raw.pop("include", None)
    chain = [(path, raw)]
    if include is None:
        return chain
    if not isinstance(include, str):
        raise InputError(path, "must be a file name or a variant name", field="include")
    if include.endswith((".yaml", ".yml")):
        target = (path.parent / include).resolve()
        if not target.is_file():
            raise InputError(path, f"included file not found: {target}", field="include")
    else:
        target = _find(include, path)
    return chain + _load_chain(target, (*seen, path.resolve()))


_COMMON = {"task", "answers"}
_SLOT_NAMES: dict[str, set[str]] = {
    "templates.context": {"context", "meta"},
    "templates.candidates": {"response_1", "response_2"},
    "templates.ending": set(),
    "templates.cot_request": set(),
    "templates.rationale_cue": set(),
    "templates.exemplar": {"context_block", "candidates_block", "ending", "answer"},
    "templates.exemplar_rationale": {
        "context_block",
        "candidates_block",
        "ending",
        "answer",
        "cot_request",
        "rationale_cue",
        "rationale",
    },
    "direct_score.instruction": {"scale"},
    "direct_score.response": {"response", "scale"},
    "direct_score.ending": {"scale"},
}
_PROBE: dict[str, Any] = {
    "context": "probe context",
    "meta": {"title": "t", "subreddit": "s", "site": "w", "instruction": "i", "input": "n"},
    "response_1": "first",
    "response_2": "second",
    "response": "one",
    "context_block": "C\n",
    "candidates_block": "R\n",
    "ending": "E=",
    "answer": "1",
    "cot_request": "Q\n",
    "rationale_cue": "Why:",
    "rationale": "because",
    "scale": 9,
}


def template_slots(spec: VariantSpec) -> dict[str, str]:
    """Every template of a variant by its dotted field name."""
    slots = {f"preambles.{key}": text for key, text in spec.preambles.items()}
    slots |= {f"templates.{key}": text for key, text in spec.templates.model_dump().items()}
    slots |= {
        f"direct_score.{key}": text
        for key, text in spec.direct_score.model_dump().items()
        if isinstance(text, str)
    }
    return slots


def _check_template(variant: Variant, field: str, source: str) -> None:
    allowed = _COMMON | _SLOT_NAMES.get(field, set())
    try:
        unknown = names_used(source) - allowed
    except jinja2.TemplateSyntaxError as error:
        raise variant.error(
            field, f"template syntax error on its line {error.lineno}: {error.message}"
        ) from None
    if unknown:
        raise variant.error(
            field,
            f"template names {', '.join(sorted(unknown))}, which does not exist here; "
            f"available: {', '.join(sorted(allowed))}",
        )
    try:
        render(source, task=variant.spec.task, answers=list(variant.spec.answers), **_PROBE)
    except SecurityError as error:
        raise variant.error(field, f"unsafe template: {error}") from None
    except jinja2.TemplateError as error:
        raise variant.error(field, f"template fails to render: {error}") from None
    except Exception as error:  # a template can raise anything its expressions do (1/0, bad index)
        raise variant.error(
            field, f"template fails to render: {type(error).__name__}: {error}"
        ) from None


def load_variant(name: str | Path) -> Variant:
    """Load, compose and check a variant (name or path); any problem: InputError naming the file."""
    path = _find(str(name), None)
    chain = _load_chain(path)
    merged: dict[str, Any] = {}
    for _, raw in reversed(chain):
        merged = _merge(merged, raw)
    files = tuple(chain)
    try:
        spec = VariantSpec.model_validate(merged)
    except ValidationError as error:
        loc, message = validation_problem(error)
        field = ".".join(str(part) for part in loc) or None
        source = _origin(files, field, path) if field else path
        raise InputError(source, f"variant {_name_of(path)}: {message}", field=field) from None
    variant = Variant(_name_of(path), path, spec, files)
    if spec.preamble not in spec.preambles:
        known = ", ".join(sorted(spec.preambles))
        raise variant.error("preamble", f"unknown preamble '{spec.preamble}'; known: {known}")
    if spec.shots > len(spec.exemplar_pool):
        raise variant.error(
            "shots", f"shots={spec.shots} but the exemplar pool has {len(spec.exemplar_pool)}"
        )
    for field, source in template_slots(spec).items():
        _check_template(variant, field, source)
    return variant
