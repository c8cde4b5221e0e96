"""What ``labelbench run`` leaves in the folder besides the results: ``run.json`` and
``config.yaml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from labelbench.config import RunConfig, load_saved_config, save_config
from labelbench.rundir.base import RunFile, read_file
from labelbench.rundir.names import CONFIG, RUN_RECORD, RUN_SCHEMA


class RunRecord(RunFile):
    """``run.json``: how ``labelbench run`` made the folder."""

    version: int = Field(default=RUN_SCHEMA, alias="schema")
    command: str = Field(description="the command line")
    wall_seconds: float = Field(ge=0, description="wall time of the run, in seconds")
    cached_share: float = Field(
        ge=0, le=1, description="share of label requests read from the cache"
    )
    machine: str = Field(description="CPU cores, torch threads and version, architecture")


def read_config(run_dir: str | Path) -> RunConfig | None:
    """The config a run saved in its folder (schema only: models and variants are not looked
    up again), or None when the folder has none. Raises InputError naming the file."""
    path = Path(run_dir) / CONFIG
    return load_saved_config(path) if path.exists() else None


def write_config(config: RunConfig, run_dir: str | Path) -> Path:
    """Write the config as it ran into the run folder."""
    path = Path(run_dir) / CONFIG
    save_config(config, path)
    return path


def read_run_record(path: str | Path) -> RunRecord | None:
    """A ``run.json``; None when there is none; raises InputError as ``read_file``."""
    if not Path(path).exists():
        return None
    return read_file(path, RunRecord, RUN_RECORD, "run record", RUN_SCHEMA)
