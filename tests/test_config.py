"""The run config: valid files load; every bad one names the file, the line and the key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer

from labelbench import config as cfg
from labelbench.cli import run_app
from labelbench.errors import InputError

REPO = Path(__file__).resolve().parents[1]
KNOWN = {
    "variants": lambda: ["summarization/base-0shot", "summarization/base-2shot", "instruction/x"],
    "builtins": lambda: ["smollm2-135m", "gemma3-270m"],
    "formats": lambda: ["openai-comparisons", "pandalm"],
}

GOOD = """\
datasets:
  - name: tldr
    path: openai_tldr_comparisons/batch13.json
    format: openai-comparisons
    confidence: [1, 2, 8, 9]
    sample: 40
labelers:
  - name: smollm2-135m
    batch_size: 4
  - name: some-org/some-model
    label: hub-model
variants:
  - summarization/*
seed: 3
output_dir: runs/quick
"""


def parse(text: str, **checks) -> cfg.RunConfig:
    return cfg.parse_config(textwrap.dedent(text), Path("run.yaml"), **{**KNOWN, **checks})


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        parse(text)
    return caught.value


def test_good_config_expands_variants_and_defaults_reference() -> None:
    config = parse(GOOD)
    assert config.variants == ["summarization/base-0shot", "summarization/base-2shot"]
    assert config.reference == "summarization/base-0shot"
    assert config.datasets[0].confidence == [1, 2, 8, 9]
    assert [spec.display for spec in config.labelers] == ["smollm2-135m", "hub-model"]
    assert config.analysis.bootstrap == 1000
    assert config.output_dir == Path("runs/quick")


@pytest.mark.parametrize(
    ("old", "new", "field", "line", "message"),
    [
        ("    sample: 40\n", "    samples: 40\n", "datasets[0].samples", 6, "unknown key"),
        # a misspelt key: named with the likely intended one, before the missing one
        ("    sample: 40\n", "    samples: 40\n", "datasets[0].samples", 6, "mean 'sample'?"),
        ("variants:\n", "variant:\n", "variant", 12, "unknown key; did you mean 'variants'?"),
        ("    batch_size: 4\n", "    batchsize: 4\n", "labelers[0].batchsize", 9, "'batch_size'"),
        ("    sample: 40\n", "    sample: many\n", "datasets[0].sample", 6, "integer"),
        ("    batch_size: 4\n", "    batch_size: 0\n", "labelers[0].batch_size", 9, "greater"),
        ("seed: 3\n", "seed: 3\nbogus: 1\n", "bogus", 15, "unknown key"),
        ("    confidence: [1, 2, 8, 9]\n", "    confidence: [0, 10]\n", "datasets[0]", 2, "1-9"),
        ("    format: openai-comparisons\n", "    format: csv2\n", "datasets[0].format", 4, "csv2"),
        ("  - name: smollm2-135m\n", "  - name: smollm-999\n", "labelers[0].name", 8, "unknown"),
        ("  - summarization/*\n", "  - summarization/nope\n", "variants[0]", 13, "nope"),
        ("seed: 3\n", "seed: 3\nreference_variant: instruction/x\n", "reference_variant", 15, ""),
        ("output_dir: runs/quick\n", "", "output_dir", 1, "required"),
        (
            "    label: hub-model\n",
            "    label: hub-model\n    backend: http\n",
            "labelers[1]",
            10,
            "url",
        ),
        ("    label: hub-model\n", "    label: smollm2-135m\n", "labelers[1]", 10, "duplicate"),
        # a key given twice: YAML keeps the last one without a word (issue: silently run)
        ("seed: 3\n", "seed: 3\nseed: 4\n", "seed", 15, "given twice (first on line 14)"),
        ("    sample: 40\n", "    sample: 40\n    sample: 4\n", "datasets[0].sample", 7, "twice"),
        ("variants:\n", "variants: [instruction/x]\nvariants:\n", "variants", 13, "twice"),
        # YAML's yes/no/true/false for a number (issue: taken for 1 and 0, e.g. `sample: true`)
        ("    sample: 40\n", "    sample: true\n", "datasets[0].sample", 6, "yes/no value"),
        ("    batch_size: 4\n", "    batch_size: yes\n", "labelers[0].batch_size", 9, "yes/no"),
        ("seed: 3\n", "seed: false\n", "seed", 14, "yes/no"),
        ("    sample: 40\n", "    max_chars: yes\n", "datasets[0].max_chars", 6, "yes/no"),
    ],
)
def test_bad_config_names_key_and_line(
    old: str, new: str, field: str, line: int, message: str
) -> None:
    assert old in GOOD
    error = error_of(GOOD.replace(old, new))
    assert error.source == "run.yaml"
    assert error.field == field
    assert error.line == line
    assert message in error.message


def test_missing_model_folder_is_named(tmp_path: Path) -> None:
    error = error_of(GOOD.replace("smollm2-135m\n", f"{tmp_path}/no-such-model\n", 1))
    assert error.field == "labelers[0].name"
    assert "does not exist" in error.message


def test_existing_model_folder_is_accepted(tmp_path: Path) -> None:
    config = parse(GOOD.replace("smollm2-135m\n", f"{tmp_path}\n", 1))
    assert config.labelers[0].name == str(tmp_path)


def test_per_dataset_variants_are_expanded_and_checked() -> None:
    text = GOOD.replace(
        "    sample: 40\n", "    sample: 40\n    variants: [summarization/base-*]\n"
    )
    assert parse(text).datasets[0].variants == [
        "summarization/base-0shot",
        "summarization/base-2shot",
    ]
    error = error_of(text.replace("summarization/base-*", "summarization/zzz"))
    assert error.field == "datasets[0].variants[0]"
    assert error.line == 7


def test_invalid_yaml_reports_line() -> None:
    error = error_of("datasets: [\n  - name: x\nlabelers: {\n")
    assert error.line is not None
    assert "invalid YAML" in error.message


def test_repeated_key_check_ends_on_a_recursive_alias() -> None:
    # the check returns; the unknown key is then named before the missing ones
    error = error_of("a: &x\n  - *x\n")
    assert (error.field, error.message) == ("a", "unknown key")


def test_label_map_keys_may_be_yaml_numbers() -> None:
    """`labels: {1: A, 2: B, 0: tie}` is how YAML writes a label map of a numeric column; the
    keys arrive as numbers (issue: "Input should be a valid string" at 'map.labels[1].[key]')."""
    own = "    map: {context: q, response_a: a, response_b: b, label: v,\n"
    own += "          labels: {1: A, 2: B, 0: tie, 0.5: 0.5}}\n"
    config = parse(GOOD.replace("    format: openai-comparisons\n", own))
    labels = config.datasets[0].map.labels
    assert labels == {"1": "A", "2": "B", "0": "tie", "0.5": 0.5}
    assert config.datasets[0].map.label_map() == {"1": 1.0, "2": 0.0, "0": 0.5, "0.5": 0.5}


@pytest.mark.parametrize("key", ["true", "no", "on"])
def test_a_yes_no_key_in_a_label_map_is_refused(key: str) -> None:
    """`labels: {1: A, true: B}`: YAML reads `true` as a boolean, the same Python dict key as 1
    (issue: the map silently became one entry, {1: B})."""
    own = "    map: {context: q, response_a: a, response_b: b, label: v,\n"
    own += f"          labels: {{1: A, {key}: B}}}}\n"
    error = error_of(GOOD.replace("    format: openai-comparisons\n", own))
    assert error.source == "run.yaml"
    assert error.line == 5
    assert error.field == f"datasets[0].map.labels.{key}"
    assert "yes/no" in error.message and f"'{key}'" in error.message
    own = own.replace(f"{key}: B", f"'{key}': B")
    quoted = parse(GOOD.replace("    format: openai-comparisons\n", own))
    assert quoted.datasets[0].map.labels == {"1": "A", key: "B"}


def test_not_a_mapping() -> None:
    assert "mapping" in error_of("- a\n- b\n").message


def test_real_registries_are_consulted() -> None:
    """Against the real prompt variants and model registry."""
    variants = cfg._variant_names()
    builtins = cfg._builtin_labelers()
    assert variants and builtins
    assert "smollm2-135m" in builtins
    text = textwrap.dedent(GOOD)
    config = cfg.parse_config(text, Path("run.yaml"))
    assert set(config.variants) <= set(variants)
    for old, new, field in [
        ("smollm2-135m\n", "smollm2-999m\n", "labelers[0].name"),
        ("summarization/*", "summarization/no-such-variant", "variants[0]"),
    ]:
        with pytest.raises(InputError) as caught:
            cfg.parse_config(text.replace(old, new, 1), Path("run.yaml"))
        assert caught.value.field == field


@pytest.mark.parametrize("name", ["quick", "tldr", "pandalm", "full"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = cfg.load_config(REPO / "configs" / f"{name}.yaml")
    assert config.variants
    if name == "quick":
        assert [spec.name for spec in config.labelers] == ["smollm2-135m"]
        assert config.datasets[0].sample is not None and config.datasets[0].sample <= 50


def test_load_config_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        cfg.load_config(tmp_path / "missing.yaml")
    assert "cannot read" in caught.value.message


def test_bad_config_fails_without_loading_models(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("smollm2-135m\n", "smollm-999\n", 1))
    script = (
        "import sys\n"
        "from labelbench.config import load_config\n"
        "from labelbench.errors import InputError\n"
        "try:\n"
        f"    load_config({str(bad)!r})\n"
        "except InputError as e:\n"
        "    print(e)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert f"{bad}:8: field 'labelers[0].name'" in out
    assert out.strip().endswith("[]")


def test_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("    sample: 40\n", "    sample: -1\n"))
    app = typer.Typer()

    @app.command()
    def run(path: Path) -> None:
        cfg.load_config(path)

    assert run_app(app, [str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: {bad}:6: field 'datasets[0].sample':")


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse(GOOD + "data_dir: /from/config\n")
    monkeypatch.delenv(cfg.DATA_DIR_ENV, raising=False)
    assert cfg.resolve_data_dir(None, config) == Path("/from/config")
    monkeypatch.setenv(cfg.DATA_DIR_ENV, "/from/env")
    assert cfg.resolve_data_dir(None, config) == Path("/from/env")
    assert cfg.resolve_data_dir(Path("/from/option"), config) == Path("/from/option")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file.json").write_text("[]")
    assert cfg.resolve_data_path("sub/file.json", tmp_path) == str(tmp_path / "sub" / "file.json")
    assert cfg.resolve_data_path("org/hub-id", tmp_path) == "org/hub-id"


def test_home_folder_in_data_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`path: ~/mine.jsonl` and `data_dir: ~/data` in a config are under the home folder, as
    a labeler's `~/models/x.gguf` is (issue: "no such file in the current folder")."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(cfg.DATA_DIR_ENV, raising=False)
    (tmp_path / "mine.jsonl").write_text("")
    for data_dir in (None, Path("/elsewhere")):
        assert cfg.resolve_data_path("~/mine.jsonl", data_dir) == str(tmp_path / "mine.jsonl")
    config = parse(GOOD + "data_dir: ~/data\n")
    assert cfg.resolve_data_dir(None, config) == tmp_path / "data"


def test_saved_config_round_trips(tmp_path: Path) -> None:
    config = parse(GOOD)
    from labelbench.rundir import read_config, write_config

    write_config(config, tmp_path)
    again = read_config(tmp_path)
    assert again == config
    assert read_config(tmp_path / "elsewhere") is None


def test_a_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    """(issue: the codec's message gave a byte position, not a line)"""
    from labelbench.config import load_config

    path = tmp_path / "run.yaml"
    path.write_bytes(b"seed: 1\ndatasets: [{name: t, path: \xff.json}]\n")
    with pytest.raises(InputError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}:2: cannot read config: invalid UTF-8 at column")


def test_a_utf16_config_is_named_as_such(tmp_path: Path) -> None:
    """(issue: a config saved as UTF-16 by a Windows editor got "invalid UTF-8 at column 1")"""
    from labelbench.config import load_config

    path = tmp_path / "run.yaml"
    path.write_text(GOOD, encoding="utf-16")
    with pytest.raises(InputError, match="it is UTF-16; save it as UTF-8"):
        load_config(path)
