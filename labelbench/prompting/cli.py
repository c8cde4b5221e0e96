"""``labelbench prompts``: list the variants, show one, render exactly what a labeler sees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labelbench.data.cli import MapOption, parse_map
from labelbench.errors import InputError
from labelbench.prompting.planner import describe_plan, plan
from labelbench.prompting.variants import list_variants, load_variant, template_slots

app = typer.Typer(
    help="Prompt variants: list them, show how one is composed, render what a labeler sees.",
    no_args_is_help=True,
)


@app.command("list")
def list_command(
    task: Annotated[
        str | None,
        typer.Option(help="Only this family or task kind, e.g. summarization, dialogue."),
    ] = None,
) -> None:
    """Every variant with its preamble, shots, chain-of-thought, sampling and position mode."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "variant", "task", "preamble", "shots", "rationales", "cot", "self-consistency", "position"
    )
    for name in list_variants(task):
        spec = load_variant(name).spec
        sampling = spec.self_consistency
        table.add_row(
            name,
            spec.task,
            spec.preamble,
            str(spec.shots),
            "yes" if spec.shots and spec.rationales_in_exemplars else "-",
            "yes" if spec.cot else "-",
            f"n={sampling.n} t={sampling.temperature} k={sampling.top_k}" if sampling else "-",
            spec.position,
        )
    Console(width=160).print(table)


@app.command()
def show(
    variant: Annotated[
        str, typer.Argument(help="A variant name or a path to a variant YAML file.")
    ],
) -> None:
    """How a variant is composed (its include chain), its settings and every template it renders."""
    loaded = load_variant(variant)
    spec = loaded.spec
    lines = [f"variant: {loaded.name}", f"description: {spec.description}", "include chain:"]
    lines += [f"  {path}" for path, _ in loaded.files]
    settings = spec.model_dump(
        include={
            "task",
            "answers",
            "preamble",
            "shots",
            "exemplar_rationales",
            "cot",
            "self_consistency",
            "position",
            "max_new_tokens",
            "shorten",
        }
    )
    lines += [f"{key}: {value}" for key, value in settings.items()]
    lines.append(f"exemplar pool: {', '.join(e.id for e in spec.exemplar_pool) or '-'}")
    for field, text in template_slots(spec).items():
        lines += [f"----- {field} -----", text]
    typer.echo("\n".join(lines))


@app.command("render")
def render_command(
    variant: Annotated[
        str, typer.Argument(help="A variant name or a path to a variant YAML file.")
    ],
    data: Annotated[Path, typer.Option(help="A comparisons file in any supported format.")],
    index: Annotated[
        int | None, typer.Option(min=0, help="Which comparison of the file (0-based; default 0).")
    ] = None,
    item_id: Annotated[
        str | None,
        typer.Option("--id", help="The comparison with this id (as in results.parquet's item_id)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Labeler model: its tokenizer, chat template and context length, as a run uses "
            "them by default."
        ),
    ] = None,
    chat: Annotated[
        bool | None,
        typer.Option(
            "--chat/--no-chat",
            help="Wrap the prompt in the model's chat template (default: as a run does, on when "
            "--model has a chat template).",
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(min=1, help="Context budget (tokens with --model, else characters)."),
    ] = None,
    pool: Annotated[
        Path | None,
        typer.Option(help="Draw exemplars from these comparisons instead of the built-in pool."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for exemplar draws and random order.")] = 0,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Data format (default: detected).")
    ] = None,
    column_map: MapOption = None,
) -> None:
    """Print every request for one comparison: each step and order, exactly as the model sees it.
    The first line says which chat mode it shows and why."""
    from labelbench.data import load_comparisons

    loaded = load_variant(variant)
    comparisons = load_comparisons(data, fmt, columns=parse_map(column_map))
    if index is not None and item_id is not None:
        raise InputError("--id", "give --index or --id, not both")
    if item_id is not None:
        found = [i for i, c in enumerate(comparisons) if c.id == item_id]
        if not found:
            raise InputError(data, f"--id {item_id}: no comparison with this id in the file")
        index = found[0]
    index = index or 0
    if not 0 <= index < len(comparisons):
        raise InputError(
            data, f"--index {index} is out of range: the file has {len(comparisons)} comparisons"
        )
    tokenizer, context = None, None
    if model is not None:
        from labelbench.models.registry import declared_context_length, load_tokenizer

        tokenizer = load_tokenizer(model)
        context = declared_context_length(model)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat is None:
        chat = has_template  # as a run resolves a labeler's unset chat mode
        why = (
            f"the default a run uses for {model}"
            + ("" if has_template else ": it has no chat template")
            if model is not None
            else "no --model, so no chat template"
        )
    else:
        why = "--chat" if chat else "--no-chat"
    if max_tokens is None and context is not None:
        max_tokens = context  # a run plans within the model's context length
    exemplars = load_comparisons(pool) if pool is not None else None
    result = plan(
        [comparisons[index]],
        loaded,
        tokenizer=tokenizer,
        pool=exemplars,
        seed=seed,
        chat=chat,
        max_tokens=max_tokens,
    )
    mode = "chat template on" if chat else "raw text, no chat template"
    typer.echo(f"===== {mode} ({why}); comparison {comparisons[index].id} =====")
    typer.echo(describe_plan(result), nl=False)
