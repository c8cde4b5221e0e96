"""bench/labeling.py's pure parts (the token trie behind the compute floor and attention's share
of the work) and its refusal of bad arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from labeling import attended_keys, attention_flops, unique_tokens

# Two prompts sharing their first two tokens: the trie has positions at depths 1, 2, 3 and 3.
SEQUENCES = [[1, 2, 3], [1, 2, 4]]


def test_trie_positions_count_a_shared_prefix_once():
    assert unique_tokens(SEQUENCES) == 4
    assert unique_tokens([[5, 5, 5]]) == 3
    assert unique_tokens([]) == 0


def test_attended_keys_are_depths_capped_by_the_window():
    assert attended_keys(SEQUENCES) == 1 + 2 + 3 + 3
    assert attended_keys(SEQUENCES, window=2) == 1 + 2 + 2 + 2
    assert attended_keys(SEQUENCES, window=100) == attended_keys(SEQUENCES)


def test_attention_flops_by_layer_type():
    """2 heads of size 4: 4 x 2 x 4 = 32 FLOPs per attended key and layer."""
    mixed = SimpleNamespace(
        num_attention_heads=2,
        head_dim=4,
        hidden_size=16,
        num_hidden_layers=2,
        layer_types=["full_attention", "sliding_attention"],
        sliding_window=2,
    )
    assert attention_flops(mixed, SEQUENCES) == 32 * (9 + 7)
    plain = SimpleNamespace(num_attention_heads=2, hidden_size=8, num_hidden_layers=3)
    assert attention_flops(plain, SEQUENCES) == 32 * 9 * 3


def test_a_qwen2_config_without_sliding_windows_counts_every_layer_in_full():
    from transformers import Qwen2Config

    config = Qwen2Config(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=3
    )
    assert attention_flops(config, SEQUENCES) == 4 * 64 * 9 * 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--slice", "0"], "--slice must be at least 1, not 0"),
        (["--threads", "0"], "--threads must be at least 1, not 0"),
        (["--pairs", "-1"], "--pairs must be at least 0, not -1"),
        (["--sc-pairs", "0"], "--sc-pairs must be at least 1, not 0"),
        (["--pairs", "0", "--cot-pairs", "0"], "nothing to measure"),
        (["--cot-pairs", "0", "--shared-prefixes-ab"], "needs --cot-pairs of at least 1"),
        (["--dtype", "int8"], "--dtype must be float32, bfloat16 or float16"),
        (["--model", "./no/such/model"], "--model: ./no/such/model: no such model directory"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(arguments: list[str], message: str) -> None:
    script = Path(__file__).resolve().parents[1] / "bench" / "labeling.py"
    run = subprocess.run(
        [sys.executable, str(script), *arguments], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
