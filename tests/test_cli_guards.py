"""Command-line guards found by trying the tools as a new user: bad option values and unusable
places fail with one line and exit 2 before any model loads."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelbench.cli", *args], capture_output=True, text=True
    )


def test_serve_on_a_busy_port_fails_before_loading(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _run(
            "serve",
            "--labeler",
            str(tmp_path / "no-model"),
            "--variant",
            "summarization/base-0shot",
            "--port",
            str(port),
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use)"
    ]


def test_serve_refuses_winner_with_variant(tmp_path):
    """--winner with --variant: which variant scores? (issue: the winner's; --variant was
    dropped without a word)"""
    import json

    winner = tmp_path / "winner.json"
    spec = {"labeler": str(tmp_path / "no-model"), "variant": "summarization/base-0shot"}
    winner.write_text(json.dumps(spec))
    done = _run("serve", "--winner", str(winner), "--variant", "summarization/detailed-0shot")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: labelbench serve:") and "not both" in line


@pytest.mark.parametrize("value", ["0", "-1"])
def test_label_rejects_a_unit_size_below_one(tmp_path, value):
    done = _run(
        "label",
        "--requests",
        str(tmp_path / "r.jsonl"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--model",
        "m",
        "--unit-items",
        value,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--unit-items" in done.stderr


def test_label_checks_its_output_folder_before_loading(tmp_path):
    from test_labeling_helpers import make_planned

    from labelbench.labeling.jsonl import write_planned

    requests = tmp_path / "r.jsonl"
    write_planned(requests, make_planned(1))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _run(
        "label",
        "--requests",
        str(requests),
        "--out",
        str(blocker / "o.jsonl"),
        "--model",
        str(tmp_path / "no-such-model"),
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "output file's folder" in line and "not a directory" in line


def test_label_refuses_a_folder_as_its_output_file_before_loading(tmp_path):
    """(issue: a folder given as --out failed only after every request was labelled)"""
    from test_labeling_helpers import make_planned

    from labelbench.labeling.jsonl import write_planned

    requests = tmp_path / "r.jsonl"
    write_planned(requests, make_planned(1))
    done = _run(
        "label",
        "--requests",
        str(requests),
        "--out",
        str(tmp_path),
        "--model",
        str(tmp_path / "no-such-model"),
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert str(tmp_path) in line and "output file is a directory" in line


def test_a_data_file_found_nowhere_says_where_it_looked(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "datasets: [{name: tldr, path: openai_tldr_comparisons/batch13.json}]\n"
        "labelers: [{name: smollm2-135m}]\nvariants: [summarization/base-0shot]\n"
        f"output_dir: {tmp_path / 'out'}\n"
    )
    done = _run("run", str(config), "--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "field 'datasets.tldr.path'" in line and str(tmp_path / "nowhere") in line
    assert "--data-dir" in line


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("args", "target"),
    [
        (["run", "config.yaml"], "labelbench.config.load_config"),
        (["run", "config.yaml", "--no-cache"], "labelbench.config.load_config"),
        (
            ["label", "--requests", "r.jsonl", "--out", "o.jsonl", "--model", "m"],
            "labelbench.labeling.jsonl.read_planned",
        ),
    ],
)
def test_ctrl_c_says_what_is_kept_and_exits_130(monkeypatch, capsys, args, target):
    from labelbench.cli import app, run_app

    monkeypatch.setattr(target, _interrupt)
    assert run_app(app, args) == 130
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    if "--no-cache" in args:
        assert lines == [
            "interrupted (Ctrl-C); with --no-cache the labels computed so far are not kept"
        ]
    else:
        assert lines[0].startswith("interrupted (Ctrl-C): the labels computed so far are kept in")
        assert "label cache; run the same command again to resume from them" in lines[0]


def test_ctrl_c_before_results_keeps_the_run_folders_config(
    tmp_path, tiny_lm_dir, monkeypatch, capsys
):
    """A rerun into a finished run's folder, stopped before it writes results, leaves that
    folder's config.yaml as the one its results.parquet came from (issue: the new config was
    written first, so `labelbench report` rendered the old results under the new settings)."""
    import json
    import textwrap

    from labelbench import benchmark
    from labelbench.cli import app, run_app

    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"question {i}", "chosen": "yes", "rejected": "no"} for i in range(3)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("the finished run's config\n", encoding="utf-8")
    config = tmp_path / "rerun.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            datasets: [{{name: mine, path: {data}}}]
            labelers: [{{name: {tiny_lm_dir}}}]
            variants: [instruction/detailed-0shot]
            output_dir: {run_dir}
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setattr(benchmark, "open_labeler", _interrupt)
    assert run_app(app, ["run", str(config), "--cache-dir", str(tmp_path / "cache")]) == 130
    assert (run_dir / "config.yaml").read_text(encoding="utf-8") == "the finished run's config\n"


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ("gemma3-270m", "'gemma3-270m' is not in the cache"),
        ("someone/missing", "someone/missing: not a built-in name or local directory"),
    ],
)
def test_a_labeler_model_not_here_fails_before_any_labelling(
    tmp_path, tiny_lm_dir, monkeypatch, capsys, second, problem
):
    """The second labeler is a built-in model that is not pulled, or a hub id the hub cannot
    provide (offline): the run says so before the first labeler starts (issue: after the first
    labeler had labelled everything)."""
    import json
    import textwrap

    from huggingface_hub import constants

    from labelbench import benchmark
    from labelbench.cli import app, run_app
    from labelbench.models import specs

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    specs._resolve_hub.cache_clear()

    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "chosen": "yes", "rejected": "no"}) + "\n")
    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            datasets: [{{name: mine, path: {data}}}]
            labelers: [{{name: {tiny_lm_dir}}}, {{name: {second}}}]
            variants: [instruction/base-0shot]
            output_dir: {tmp_path / "run"}
            """
        )
    )
    monkeypatch.setenv("LABELBENCH_CACHE_DIR", str(tmp_path / "empty-cache"))

    def labelling_started(*_, **__):
        raise AssertionError("labelling started")

    monkeypatch.setattr(benchmark, "open_labeler", labelling_started)
    assert run_app(app, ["run", str(config)]) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert problem in line


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["run", "--bogus"], "labelbench run: No such option: --bogus"),
        (["run"], "labelbench run: Missing argument 'config'."),
        (["models", "list", "--x"], "labelbench models list: No such option: --x"),
        (["serve", "--port", "0"], "labelbench serve: Invalid value for '--port': Input should"),
        # (issue: an option without its value was reported as "labelbench: ...", no subcommand)
        (["label", "--requests"], "labelbench label: Option '--requests' requires an argument."),
        (["models", "info", "--x"], "labelbench models info: No such option: --x"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(args, problem):
    done = _run(*args)
    assert done.returncode == 2
    error, hint = done.stderr.strip().splitlines()
    assert error.startswith(f"error: {problem}")
    command = problem.split(":")[0]
    assert hint == f"Try '{command} --help' for help."


def test_check_precision_names_a_missing_model_before_the_data(tmp_path):
    """(issue: a model that is not there was reported as missing TL;DR data)"""
    done = _run(
        "models",
        "check-precision",
        str(tmp_path / "no-model"),
        "--data-dir",
        str(tmp_path / "no-data"),
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert str(tmp_path / "no-model") in line and "no such model directory" in line


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--dtype", "fp8", "error: --dtype: "),
        ("--device", "tpu", "unknown device 'tpu'; use cpu, cuda or cuda:N"),
    ],
)
def test_label_names_the_flag_of_a_bad_precision_or_device(tmp_path, option, value, words):
    """(issue: --dtype fp8 was reported as "dtype:", the config field, and --device tpu listed
    every device type torch knows)"""
    from test_labeling_helpers import make_planned

    from labelbench.labeling.jsonl import write_planned

    requests = tmp_path / "r.jsonl"
    write_planned(requests, make_planned(1))
    out = tmp_path / "o.jsonl"
    done = _run(
        "label", "--requests", str(requests), "--out", str(out), "--model", "smollm2-135m",
        option, value,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert words in line and "xla" not in line and "Value error" not in line
    assert not out.exists()


def test_label_checks_its_flags_before_the_requests_file(tmp_path):
    requests = tmp_path / "r.jsonl"
    requests.write_text("")
    done = _run("label", "--requests", str(requests), "--out", "o.jsonl", "--model", "m")
    assert "holds no planned requests" in done.stderr
    done = _run(
        "label", "--requests", str(requests), "--out", "o.jsonl", "--model", "m",
        "--device", "gpu",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --device: unknown device 'gpu'; use cpu, cuda or cuda:N"


def test_label_refuses_an_empty_requests_file(tmp_path):
    """(issue: an empty requests file "labelled" 0 of 0 and exited 0)"""
    requests = tmp_path / "r.jsonl"
    requests.write_text("\n")
    out = tmp_path / "o.jsonl"
    done = _run("label", "--requests", str(requests), "--out", str(out), "--model", "m")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"{requests}: holds no planned requests" in line
    assert not out.exists()


def test_serve_names_the_winner_file_for_an_unknown_variant(tmp_path):
    """(issue: an unknown variant in winner.json was reported without the file or field)"""
    winner = tmp_path / "winner.json"
    spec = {"name": "smollm2-135m"}
    record = {"labeler": "smollm2-135m", "variant": "x/y", "labeler_spec": spec}
    winner.write_text(json.dumps(record))
    with socket.socket() as probe:  # a port free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = _run("serve", "--winner", str(winner), "--port", str(port))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {winner}: field 'variant': unknown variant 'x/y'"), line
