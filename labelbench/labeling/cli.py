"""``labelbench label`` / ``python -m labelbench.labeling``: label planned requests from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Label planned requests (JSON lines) with a model; resumable through the label cache.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def label(
    requests: Annotated[Path, typer.Option(help="Planned requests, JSON lines.")],
    out: Annotated[Path, typer.Option(help="Where to write the label rows (JSON lines).")],
    model: Annotated[str, typer.Option(help="Built-in name, model folder, .gguf or server model.")],
    backend: Annotated[
        str, typer.Option(help="transformers, http, vllm or chat (chat-planned requests).")
    ] = "transformers",
    base_url: Annotated[str | None, typer.Option(help="http backend: server URL.")] = None,
    api_key_env: Annotated[
        str, typer.Option(help="http backend: environment variable holding the API key.")
    ] = "OPENAI_API_KEY",
    identity: Annotated[
        str | None,
        typer.Option(help="What the weights are, for the cache (default: derived from the model)."),
    ] = None,
    chat: Annotated[
        bool | None,
        typer.Option(
            "--chat/--no-chat",
            help="Chat mode the requests were planned in (part of the identity; default: auto).",
        ),
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Label cache directory.")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    unit_items: Annotated[
        int | None,
        typer.Option(min=1, help="Items per stored work unit [default: 16; 64 with rationales]."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="http backend: requests in flight.")] = 8,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="http backend: seconds per request.")
    ] = 60.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    dtype: Annotated[
        str | None,
        typer.Option(help="float32 or bfloat16 (default: the model's measured default)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda or cuda:N (default: CUDA when available).")
    ] = None,
) -> None:
    """Label every planned request; a killed run resumes from the cache."""
    from labelbench.errors import check_writable_file
    from labelbench.labeling.cache import LabelCache, default_cache_dir
    from labelbench.labeling.jsonl import read_planned, write_result
    from labelbench.labeling.labeler import check_scored, labeler_spec, open_labeler
    from labelbench.labeling.runner import label as run_label

    spec = labeler_spec(
        "labelbench label",
        name=model,
        backend=backend,
        url=base_url,
        api_key_env=api_key_env,
        identity=identity,
        chat=chat,
        concurrency=concurrency,
        timeout=timeout,
        dtype=dtype,
        device=device,
    )
    planned = read_planned(requests)
    check_writable_file(out, "output file")
    labeler = open_labeler(spec)
    cache = None if no_cache else LabelCache(cache_dir or default_cache_dir())
    try:
        result = run_label(
            planned, labeler.backend, cache=cache, progress=progress, unit_items=unit_items
        )
    finally:
        labeler.close()
        if cache is not None:
            cache.close()
    write_result(out, result)
    check_scored(result, f"{spec.display} ({requests})", labeler.backend)  # all unscored: exit 2
