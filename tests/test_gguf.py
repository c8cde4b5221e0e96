"""A user's own GGUF as a model spec: written here with the ``gguf`` package from the tiny torch
model, de-quantized once into the cache, and labelling exactly as the torch model does."""

from __future__ import annotations

import errno
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_tiny_model

from labelbench.cli import app, run_app
from labelbench.config import parse_config
from labelbench.errors import InputError, ModelError
from labelbench.models import dequantize, hashing, registry
from labelbench.models.registry import load_model, load_tokenizer, model_identity, resolve

LAYER_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
TOP_TENSORS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def rotary_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's q/k row order: per head, the two rotary halves interleaved."""
    rows = weight.shape[0]
    halves = weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
    return halves.swapaxes(1, 2).reshape(weight.shape)


def write_gguf(path: Path, model, tokenizer, *, architecture: str = "llama") -> Path:
    """The model's float32 weights and the tokenizer, as llama.cpp writes a llama GGUF."""
    import gguf

    config = model.config
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(config.vocab_size)
    tokens = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    special = set(tokenizer.all_special_tokens)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in special else 1 for token in tokens])  # 3: control
    writer.add_token_merges([" ".join(pair) for pair in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_unk_token_id(tokenizer.unk_token_id)
    writer.add_add_bos_token(False)
    for name, tensor in model.state_dict().items():
        weight = tensor.detach().numpy().astype(np.float32)
        if name in TOP_TENSORS:
            writer.add_tensor(TOP_TENSORS[name], weight)
            continue
        _, _, layer, *module, _ = name.split(".")  # model.layers.N.<module>.weight
        module = ".".join(module)
        if module == "self_attn.q_proj":
            weight = rotary_permute(weight, config.num_attention_heads)
        elif module == "self_attn.k_proj":
            weight = rotary_permute(weight, config.num_key_value_heads)
        writer.add_tensor(f"blk.{layer}.{LAYER_TENSORS[module]}.weight", weight)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv(registry.CACHE_ENV, str(path))
    return path


@pytest.fixture()
def tiny_gguf(tmp_path, tiny_lm) -> Path:
    (tmp_path / "ggufs").mkdir()
    return write_gguf(tmp_path / "ggufs" / "tiny.gguf", *tiny_lm)


@pytest.fixture()
def conversions(monkeypatch) -> list[Path]:
    """Every GGUF de-quantized from here on."""
    seen: list[Path] = []
    real = registry.load_gguf

    def counting(gguf_path: Path):
        seen.append(gguf_path)
        return real(gguf_path)

    monkeypatch.setattr(dequantize, "load_gguf", counting)
    return seen


def cli_error(capsys, args: list[str]) -> str:
    """Run the CLI expecting a user error: exit code 2 and exactly one line on stderr."""
    capsys.readouterr()
    assert run_app(app, args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer("Which summary is better? Preferred Summary=", return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits[0]


# ---------------------------------------------------------------- conversion


def test_gguf_loads_as_the_torch_model_it_was_written_from(tiny_gguf, tiny_lm, cache):
    model, tokenizer = tiny_lm
    loaded = load_model(tiny_gguf)
    sha = registry.sha256_file(tiny_gguf)
    assert loaded.path == cache / "models" / f"gguf-{sha[:16]}"
    assert loaded.identity == f"tiny.gguf@sha256:{sha[:16]}"
    text = "Summary 1: short. Summary 2: a much longer summary of the post."
    assert loaded.tokenizer(text).input_ids == tokenizer(text).input_ids
    assert loaded.model.config.tie_word_embeddings is False
    torch.testing.assert_close(
        logits(loaded.model, loaded.tokenizer), logits(model, tokenizer), rtol=0, atol=1e-5
    )
    manifest = json.loads((loaded.path / registry.MANIFEST_NAME).read_text())
    assert manifest["source"] == {"gguf_file": str(tiny_gguf), "gguf_sha256": sha}
    assert manifest["parameters"] == sum(p.numel() for p in model.parameters())


def test_gguf_is_converted_once(tiny_gguf, conversions, capsys):
    first = resolve(tiny_gguf)
    stamp = first.path.stat().st_mtime_ns
    assert "de-quantized" in capsys.readouterr().err
    load_model(tiny_gguf)
    load_tokenizer(str(tiny_gguf))
    model_identity(tiny_gguf)
    hashing._cached_sha256.cache_clear()  # as a new process would: hash again, find the cache
    assert resolve(tiny_gguf) == first
    assert run_app(app, ["models", "info", str(tiny_gguf)]) == 0
    shown = capsys.readouterr()
    assert f"tiny.gguf@sha256:{first.revision[:16]}" in shown.out
    assert "de-quantized" not in shown.err
    assert conversions == [tiny_gguf]
    assert first.path.stat().st_mtime_ns == stamp
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]


def test_new_content_is_a_new_model(tiny_gguf, tiny_tokenizer, conversions):
    before = resolve(tiny_gguf)
    replacement = write_gguf(
        tiny_gguf.with_name("new.gguf"), build_tiny_model(tiny_tokenizer, 1), tiny_tokenizer
    )
    os.replace(replacement, tiny_gguf)
    after = resolve(tiny_gguf)
    assert after.path != before.path and after.revision != before.revision
    assert model_identity(tiny_gguf) != f"tiny.gguf@sha256:{before.revision[:16]}"
    assert conversions == [tiny_gguf, tiny_gguf]


def test_folder_holding_one_gguf_is_that_model(tiny_gguf, conversions):
    assert resolve(tiny_gguf.parent).path == resolve(tiny_gguf).path
    assert conversions == [tiny_gguf]


def test_folder_holding_several_ggufs_names_them(tiny_gguf, capsys):
    (tiny_gguf.parent / "other.gguf").write_bytes(tiny_gguf.read_bytes())
    with pytest.raises(ModelError, match=r"holds 2 GGUF files \(other.gguf, tiny.gguf\)"):
        resolve(tiny_gguf.parent)
    assert str(tiny_gguf.parent) in cli_error(capsys, ["models", "info", str(tiny_gguf.parent)])


def test_interrupted_conversion_leaves_nothing_behind(tiny_gguf, cache, monkeypatch):
    def interrupted(gguf_path):
        raise KeyboardInterrupt

    monkeypatch.setattr(dequantize, "load_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resolve(tiny_gguf)
    assert list((cache / "models").iterdir()) == []


# ---------------------------------------------------------------- errors: one line naming the file


def not_a_gguf(path: Path) -> None:
    path.write_text("not a model\n" * 10)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5000])


def truncated_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


BROKEN = [
    (not_a_gguf, "not a GGUF file"),
    (truncated, "truncated or damaged GGUF file"),
    (truncated_header, "truncated or damaged GGUF file"),
]


@pytest.mark.parametrize(("damage", "expected"), BROKEN, ids=[d.__name__ for d, _ in BROKEN])
def test_broken_gguf_is_one_line_naming_the_file(tiny_gguf, damage, expected, cache, capsys):
    damage(tiny_gguf)
    with pytest.raises(ModelError, match=expected) as caught:
        load_model(tiny_gguf)
    assert str(caught.value).startswith(f"{tiny_gguf}: ")
    line = cli_error(capsys, ["models", "info", str(tiny_gguf)])
    assert line.startswith(f"error: {tiny_gguf}: ") and expected in line
    assert not any(p.name.startswith("gguf-") for p in (cache / "models").glob("*"))


def test_unsupported_architecture_is_named(tmp_path, tiny_lm, capsys):
    path = write_gguf(tmp_path / "odd.gguf", *tiny_lm, architecture="no-such-arch")
    with pytest.raises(ModelError, match=r"could not load this GGUF \(architecture 'no-such-arch'"):
        resolve(path)
    assert "no-such-arch" in cli_error(capsys, ["models", "info", str(path)])


def test_read_only_cache_says_so(tiny_gguf, cache, monkeypatch, capsys):
    (cache / "models").mkdir(parents=True)
    (cache / "models").chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: fail as the kernel would for anyone else

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(cache / "models"))

        monkeypatch.setattr(dequantize.tempfile, "TemporaryFile", refuse)
        monkeypatch.setattr(dequantize.tempfile, "mkdtemp", refuse)
    try:
        line = cli_error(capsys, ["models", "info", str(tiny_gguf)])
    finally:
        (cache / "models").chmod(0o755)
    assert line.startswith(f"error: {tiny_gguf}: cannot write its de-quantized copy under ")
    assert registry.CACHE_ENV in line


def test_full_disk_while_saving_says_so(tiny_gguf, cache, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dequantize, "dequantize_gguf", full)
    line = cli_error(capsys, ["models", "info", str(tiny_gguf)])
    assert line.startswith(f"error: {tiny_gguf}: cannot write its de-quantized copy under ")
    assert "No space left on device" in line
    assert list((cache / "models").iterdir()) == []


def test_missing_gguf_is_not_taken_for_a_hub_id(tmp_path):
    with pytest.raises(ModelError, match="no such GGUF file"):
        resolve(tmp_path / "missing.gguf")


# ---------------------------------------------------------------- labelling through a run config


def test_labels_through_a_run_config(
    tiny_gguf, tiny_lm_dir, data_dir, tmp_path, monkeypatch, capsys
):
    """``labelbench run`` with the GGUF named by a relative path in the config: the labels are
    the ones the torch model it was written from gives."""
    monkeypatch.chdir(tmp_path)
    text = f"""
        datasets:
          - {{name: tldr, path: openai_tldr_comparisons/batch13.json, sample: 4}}
        labelers:
          - name: ggufs/tiny.gguf
          - {{name: {tiny_lm_dir}, label: torch}}
        variants: [summarization/base-0shot]
        output_dir: run
    """
    (tmp_path / "run.yaml").write_text(textwrap.dedent(text))
    args = ["run", "run.yaml", "--data-dir", str(data_dir), "--cache-dir", "labels"]
    assert run_app(app, [*args, "--no-report"]) == 0
    results = pd.read_parquet(tmp_path / "run" / "results.parquet")
    by_labeler = {name: rows.set_index("item_id") for name, rows in results.groupby("labeler")}
    assert set(by_labeler) == {"ggufs/tiny.gguf", "torch"}
    gguf, torch_ = by_labeler["ggufs/tiny.gguf"], by_labeler["torch"]
    assert len(gguf) == 4 and gguf["ai_pref_a"].notna().all()
    np.testing.assert_allclose(gguf["ai_pref_a"], torch_.loc[gguf.index, "ai_pref_a"], atol=1e-5)


def test_config_accepts_a_gguf_path_and_names_a_missing_one(tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checks = {"variants": lambda: ["summarization/base-0shot"], "formats": lambda: None}

    def parse(labeler: str):
        text = "datasets: [{name: d, path: x.json}]\nvariants: [summarization/base-0shot]\n"
        text += "output_dir: o\n"
        text += f"labelers:\n  - name: {labeler}\n"
        return parse_config(text, Path("run.yaml"), **checks)

    assert parse("ggufs/tiny.gguf").labelers[0].name == "ggufs/tiny.gguf"
    assert parse(str(tiny_gguf)).labelers[0].name == str(tiny_gguf)
    with pytest.raises(InputError) as caught:
        parse("ggufs/missing.gguf")
    assert str(caught.value) == (
        "run.yaml:5: field 'labelers[0].name': GGUF file 'ggufs/missing.gguf' does not exist"
    )
