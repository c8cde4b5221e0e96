"""The ``labelbench`` command line."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from labelbench.config import ServeSettings
from labelbench.data.cli import app as data_app
from labelbench.errors import InputError, run_app, validation_problem
from labelbench.labeling.cli import label as label_command
from labelbench.models.cli import app as models_app
from labelbench.prompting.cli import app as prompts_app
from labelbench.report.cli import report
from labelbench.view.cli import view

CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        help="Label cache folder (default: $LABELBENCH_CACHE_DIR or ~/.cache/labelbench)."
    ),
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Neither read nor write the label cache.")
]

app = typer.Typer(
    help="Benchmark AI labelers against human preferences, then train with the winner (RLAIF).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")
app.command("report")(report)
app.command("label")(label_command)
app.command("view")(view)


cache_app = typer.Typer(
    help="The label cache: reuse a finished run's labels.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")


@cache_app.command("import")
def cache_import_command(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run folder: its config.yaml and results.parquet.")
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with the run's data files (also LABELBENCH_DATA_DIR)."),
    ] = None,
    cache_dir: CacheDirOption = None,
    check: Annotated[
        int,
        typer.Option(min=0, help="Items per cell labelled again here first; 0 skips the check."),
    ] = 2,
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Largest |P(A) difference| the check accepts.")
    ] = 0.03,
) -> None:
    """Store a finished run's scored labels in the label cache, so a run sharing its cells
    reads them instead of labelling again (chain-of-thought cells are not importable)."""
    from labelbench.reuse import import_labels, print_report

    report = import_labels(run_dir, data_dir, cache_dir=cache_dir, check=check, tolerance=tolerance)
    raise typer.Exit(print_report(report))


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Run config (YAML); see configs/.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with local copies of the original data files (also LABELBENCH_DATA_DIR).",
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    with_report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write the report after labelling.")
    ] = True,
) -> None:
    """Label data sets x labelers x variants, then write the report with every metric."""
    from rich.console import Console

    from labelbench.benchmark import run
    from labelbench.config import load_config, resolve_data_dir
    from labelbench.report.cli import verdict_lines, write_report
    from labelbench.rundir import REPORT_HTML, REPORT_MD

    loaded = load_config(config)
    out = run(
        loaded,
        command=shlex.join(["labelbench", *sys.argv[1:]]),
        data_dir=resolve_data_dir(data_dir, loaded),
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )
    console = Console(stderr=True)
    if with_report:
        paths = write_report(out, progress=True)
        console.print(f"report: {paths[REPORT_MD]} and {paths[REPORT_HTML]}")
    console.print(f"results: {out}")
    if with_report:  # the verdict last, where a reader looks first
        typer.echo("\n".join(verdict_lines(out)))


_S = ServeSettings.model_fields


def _help(name: str) -> str:
    return str(_S[name].description)


@app.command("serve")
def serve_command(
    winner: Annotated[
        Path | None, typer.Option(help="winner.json of a benchmark: labeler spec, variant, seed.")
    ] = None,
    labeler: Annotated[
        str | None, typer.Option(help="Labeler model (instead of --winner): name, folder, hub id.")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="Prompt variant (with --labeler).")] = None,
    backend: Annotated[
        str | None, typer.Option(help="With --labeler: transformers, http or vllm.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="With --backend http: the server's .../v1.")
    ] = None,
    mode: Annotated[str, typer.Option(help=_help("mode"))] = _S["mode"].default,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(help=_help("max_batch"))] = _S["max_batch"].default,
    max_wait_ms: Annotated[float, typer.Option(help=_help("max_wait_ms"))] = _S[
        "max_wait_ms"
    ].default,
    queue_size: Annotated[int, typer.Option(help=_help("queue_size"))] = _S["queue_size"].default,
    timeout: Annotated[float, typer.Option(help=_help("timeout"))] = _S["timeout"].default,
    max_body_bytes: Annotated[int, typer.Option(help=_help("max_body_bytes"))] = _S[
        "max_body_bytes"
    ].default,
    max_items: Annotated[int, typer.Option(help=_help("max_items"))] = _S["max_items"].default,
    max_item_tokens: Annotated[int | None, typer.Option(help=_help("max_item_tokens"))] = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Serve the winning labeler as a reward: POST /score, POST /get_reward (OpenRLHF), GET /health.

    TRL GRPO/RLOO: reward_funcs=\\[labelbench.rewards.LabelbenchReward(url="http://HOST:PORT")]

    OpenRLHF: --reward.remote_url http://HOST:PORT/get_reward (pairwise: label = reference)

    verl: reward.custom_reward_function.path=labelbench/rewards.py name=compute_score

    (verl: +reward.custom_reward_function.reward_kwargs.url=http://HOST:PORT; prompt in extra_info)

    docs/serving.md has the full recipes and the versions checked.
    """
    from labelbench.labeling.labeler import labeler_spec
    from labelbench.serve import check_port_free, open_engine, serve

    try:
        settings = ServeSettings(
            mode=mode,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            queue_size=queue_size,
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            max_items=max_items,
            max_item_tokens=max_item_tokens,
        )
    except ValidationError as error:
        loc, message = validation_problem(error)
        option = "--" + "-".join(str(part) for part in loc).replace("_", "-")
        raise InputError(option, message) from None
    check_port_free(host, port)  # before the model loads
    spec = None
    if labeler is not None:
        spec = labeler_spec("--labeler", name=labeler, backend=backend, url=url)
    engine = open_engine(
        winner=winner,
        labeler=spec,
        variant=variant,
        mode=settings.mode,
        cache_dir=cache_dir,
        use_cache=not no_cache,
    )
    typer.echo(f"labelbench serve: {engine.labeler.identity} on http://{host}:{port}", err=True)
    serve(engine, settings, host=host, port=port)


def main() -> None:
    sys.exit(run_app(app, prog_name="labelbench"))


if __name__ == "__main__":  # python -m labelbench.cli ...
    main()
