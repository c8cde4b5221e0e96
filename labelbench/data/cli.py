"""``labelbench data``: look at human preference data before labelling it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labelbench.data.formats import ALL_FORMATS, PROMPT_FORMATS, ColumnMap, parse_column_map

app = typer.Typer(help="Inspect human preference data sets.", no_args_is_help=True)

FormatOption = Annotated[
    str | None,
    typer.Option("--format", "-f", help=f"One of: {', '.join(ALL_FORMATS)}. Detected if omitted."),
]
MapOption = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="Columns of your own table, e.g. 'context=prompt,response_a=r1,response_b=r2,"
        "label=winner,labels=model1:A;model2:B;tie:tie' or 'context=prompt,chosen=good,"
        "rejected=bad' (keys: see docs/data.md).",
    ),
]


def parse_map(spec: str | None) -> ColumnMap | None:
    """The ``--map`` option as a column map (None when not given); raises InputError."""
    return None if spec is None else parse_column_map(spec)


def _stats_table(stats: dict) -> Table:
    table = Table(title=escape(f"{stats['source']} ({stats['format']})"), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("comparisons", "groups", "unique_pairs", "annotators"):
        table.add_row(key.replace("_", " "), f"{stats[key]:,}")
    table.add_row("annotations per comparison", str(stats["annotations_per_comparison"]))
    table.add_row("multi-annotator comparisons", f"{stats['multi_annotator_comparisons']:,}")
    table.add_row("pairs labelled in several rows", f"{stats['pairs_labelled_in_several_rows']:,}")
    balance = stats["label_balance"]
    table.add_row(
        "human label", ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in balance.items())
    )
    table.add_row("ties", f"{balance['tie']:,}")
    if stats["longer_preferred_share"] is not None:
        table.add_row("longer response preferred", f"{stats['longer_preferred_share']:.1%}")
    if stats["confidence"]:
        table.add_row("confidence", str(stats["confidence"]))
    table.add_row("A/B order", str(stats["order"]))
    table.add_row("empty responses", f"{stats['empty_responses']:,}")
    table.add_row("empty contexts", f"{stats['empty_contexts']:,}")
    for part, values in stats["length_chars"].items():
        table.add_row(
            f"{part.replace('_', ' ')} chars", ", ".join(f"{k} {v:g}" for k, v in values.items())
        )
    table.add_row("diverge before the final reply", f"{stats['diverges_early']:,}")
    if stats.get("map"):
        table.add_row("map", escape(stats["map"]))
    table.add_row("invalid records", f"{stats['invalid_records']:,}")
    return table


def _prompt_stats(loaded) -> dict:
    return {
        "source": loaded.source,
        "format": loaded.format,
        "prompts": len(loaded),
        "groups": len({item.group_id for item in loaded}),
        "with_reference": sum(item.reference is not None for item in loaded),
        "invalid_records": len(loaded.invalid),
        "invalid": [str(error) for error in loaded.invalid],
    }


@app.command()
def inspect(
    path: Annotated[str, typer.Argument(help="A file, a saved `datasets` folder, or a hub id.")],
    fmt: FormatOption = None,
    columns: MapOption = None,
    split: Annotated[str | None, typer.Option(help="Split of a dataset folder or hub id.")] = None,
    config: Annotated[str | None, typer.Option(help="Config name of a hub dataset.")] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Count and list bad records instead of stopping at the first.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Count comparisons, groups and annotators; show label balance, ties and lengths."""
    from labelbench.data.inspect import summarize
    from labelbench.data.loaders import empty_note, load_records, skipped_note

    loaded = load_records(
        path,
        fmt,
        columns=parse_map(columns),
        split=split,
        config=config,
        skip_invalid=skip_invalid,
    )
    prompts = loaded.format in PROMPT_FORMATS
    stats = _prompt_stats(loaded) if prompts else summarize(loaded)  # type: ignore[arg-type]
    console = Console()
    if as_json:
        print(json.dumps(stats, indent=2))
    elif prompts:
        console.print(stats)
    else:
        console.print(_stats_table(stats))
    if stats["invalid"] and not as_json:
        console.print(f"[yellow]{stats['invalid_records']} invalid records skipped:[/yellow]")
        for line in stats["invalid"]:
            console.print(f"  {line}", markup=False, highlight=False)
    if loaded.invalid:
        print(skipped_note(loaded), file=sys.stderr)
    if not prompts and (note := empty_note(loaded)):
        print(note, file=sys.stderr)
