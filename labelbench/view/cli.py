"""``labelbench view RUN_DIR``: the item view of a run, written as one self-contained page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def view(
    run_dir: Annotated[
        Path, typer.Argument(help="A run folder: results.parquet and the config.yaml it ran.")
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the run's data files (also LABELBENCH_DATA_DIR)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write the page (default: RUN_DIR/items.html, git-ignored)."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Label cache to read rationales from and check prompts against."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read the label cache.")
    ] = False,
) -> None:
    """Write items.html: every labelled item with its texts, prompts in each order, P(A),
    log-odds and human labels; filters for disagreements, same-slot pairs, length gaps,
    confident mistakes and unscored items. The page holds data texts: do not commit it."""
    from labelbench.view.page import write_view

    path = write_view(run_dir, data_dir, out=out, cache_dir=cache_dir, use_cache=not no_cache)
    typer.echo(f"wrote {path} (open it in a browser)", err=True)
