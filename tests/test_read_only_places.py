"""A read-only run directory or cache: one line naming the path, exit 2, before any labelling or
training (issue: OSError traceback, exit 1)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from test_rlaif_cli import assert_one_line_error, run, write_comparisons

from labelbench.cli import app as labelbench_app
from labelbench.cli import run_app


@pytest.fixture()
def read_only(tmp_path):
    """A directory nobody can write to: mode 0555, or immutable when running as root."""
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a read-only directory as root here (no chattr)")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def no_labelling(monkeypatch):
    from labelbench import benchmark

    def labelling_started(*_, **__):
        raise AssertionError("labelling started")

    monkeypatch.setattr(benchmark, "open_labeler", labelling_started)


def write_config(tmp_path: Path, tiny_lm_dir: Path, output_dir: Path) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            datasets:
              - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: 4}}
            labelers:
              - name: {tiny_lm_dir}
            variants: [summarization/base-0shot]
            output_dir: {output_dir}
            """
        )
    )
    return config


def test_a_read_only_label_cache_file_fails_when_opened(tmp_path):
    """labels.sqlite read-only in a writable folder (copied from a read-only place, another
    user's): one line when the cache opens (issue: a sqlite3.OperationalError traceback after
    the first unit was labelled, whose labels were lost)."""
    from labelbench.errors import InputError
    from labelbench.labeling import LabelCache

    LabelCache(tmp_path).close()
    file = tmp_path / "labels.sqlite"
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(file)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only file as root here (no chattr)")
    else:
        file.chmod(0o444)
    try:
        with pytest.raises(InputError, match=r"cannot open the label cache.*readonly") as caught:
            LabelCache(tmp_path)
        assert caught.value.source == str(file)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(file)], check=True)


def test_labelbench_run_into_a_read_only_run_directory(
    tmp_path, tiny_lm_dir, data_dir, read_only, capsys, monkeypatch
):
    no_labelling(monkeypatch)
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    config = write_config(tmp_path, tiny_lm_dir, read_only / "run")
    code = run_app(labelbench_app, ["run", str(config), "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, str(read_only / "run"), "run directory is not writable")


def test_labelbench_run_over_a_read_only_results_file(
    tmp_path, tiny_lm_dir, data_dir, capsys, monkeypatch
):
    """A rerun into a run folder whose results.parquet cannot be replaced: one line before any
    labelling (issue: a PermissionError traceback once everything was labelled)."""
    no_labelling(monkeypatch)
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    results = run_dir / "results.parquet"
    results.write_bytes(b"an earlier run's results")
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(results)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only file as root here (no chattr)")
    else:
        results.chmod(0o444)
    try:
        config = write_config(tmp_path, tiny_lm_dir, run_dir)
        code = run_app(labelbench_app, ["run", str(config), "--data-dir", str(data_dir)])
        err = capsys.readouterr().err
        assert_one_line_error(code, err, str(results), "read-only")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(results)], check=True)


def test_labelbench_run_with_a_read_only_cache(
    tmp_path, tiny_lm_dir, data_dir, read_only, capsys, monkeypatch
):
    no_labelling(monkeypatch)
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(read_only))
    config = write_config(tmp_path, tiny_lm_dir, tmp_path / "run")
    code = run_app(labelbench_app, ["run", str(config), "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, str(read_only), "label cache directory is not writable")
    assert not (tmp_path / "run" / "results.parquet").exists()


def test_rlaif_commands_check_where_they_write(
    tmp_path, tiny_lm_dir, read_only, capsys, monkeypatch
):
    data = write_comparisons(tmp_path / "c.jsonl", n_posts=8)
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run(["reward", data, "--out", read_only / "rm", "--model", tiny_lm_dir], capsys)
    assert_one_line_error(code, err, str(read_only / "rm"), "not writable")
    code, _, err = run(
        [
            "ppo",
            "--prompts",
            data,
            "--out",
            read_only / "ppo",
            "--policy",
            tiny_lm_dir,
            "--reward-model",
            tiny_lm_dir,
        ],
        capsys,
    )
    assert_one_line_error(code, err, str(read_only / "ppo"), "not writable")
    label = [
        "label",
        "--data",
        data,
        "--labeler",
        tiny_lm_dir,
        "--variant",
        "summarization/base-0shot",
    ]
    code, _, err = run([*label, "--out", read_only / "labelled"], capsys)
    assert_one_line_error(code, err, str(read_only / "labelled"), "not writable")
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(read_only))
    code, _, err = run([*label, "--out", tmp_path / "labelled"], capsys)
    assert_one_line_error(code, err, str(read_only), "label cache directory is not writable")
    assert not (tmp_path / "labelled").exists()


def test_models_pull_into_a_read_only_cache(read_only, capsys, monkeypatch):
    from labelbench.models import fetch

    def no_download(*_, **__):
        raise AssertionError("download started")

    monkeypatch.setattr(fetch, "download_wheels", no_download)
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(read_only))
    code = run_app(labelbench_app, ["models", "pull", "smollm2-135m"])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, str(read_only / "models"), "model cache is not writable")
