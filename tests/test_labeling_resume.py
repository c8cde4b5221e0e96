"""A labeling run killed with SIGKILL resumes from the cache and ends as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import torch
from test_labeling_helpers import make_planned

from labelbench.config import LabelerSpec
from labelbench.labeling import LabelCache, label
from labelbench.labeling.cache import CACHE_FILE
from labelbench.labeling.jsonl import write_planned
from labelbench.labeling.labeler import open_labeler

VOLATILE = ("cached", "seconds")  # where a row came from and how long it took, not the label


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def _stored(cache_dir) -> int:
    path = cache_dir / CACHE_FILE
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path, tiny_lm_dir):
    planned = make_planned(40, rationale={"n": 2, "temperature": 0.8, "max_new_tokens": 12})
    planned += make_planned(40, seed=3, variant="plain")
    total_keys = 40 * 2 * 2 + 40 * 2
    requests = tmp_path / "planned.jsonl"
    write_planned(requests, planned)
    killed_cache = tmp_path / "killed"
    out = tmp_path / "resumed.jsonl"
    command = [
        sys.executable,
        "-m",
        "labelbench.labeling",
        "--requests",
        str(requests),
        "--out",
        str(out),
        "--model",
        str(tiny_lm_dir),
        "--cache-dir",
        str(killed_cache),
        "--unit-items",
        "2",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _stored(killed_cache) < 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stored_at_kill = _stored(killed_cache)
    assert 20 <= stored_at_kill < total_keys
    assert not out.exists()

    subprocess.run(command, env=env, check=True, capture_output=True)
    resumed = [json.loads(line) for line in out.read_text().splitlines()]

    assert torch.get_num_threads() == 1  # as the subprocess: bit-identical floating point
    spec = LabelerSpec(name=str(tiny_lm_dir), device="cpu")
    backend = open_labeler(spec).backend  # as the CLI opens it
    with LabelCache(tmp_path / "clean") as cache:
        clean = label(planned, backend, cache=cache, progress=False, unit_items=2).records()
        assert len(cache) == total_keys

    assert [_stable(r) for r in resumed] == [_stable(json.loads(json.dumps(r))) for r in clean]
    assert len({(r["variant"], r["item_id"], r["order"]) for r in resumed}) == len(planned)
    assert _stored(killed_cache) == total_keys  # every label stored once, none duplicated
    from_cache = sum(r["cached"] for r in resumed)
    assert 0 < from_cache < len(resumed)  # the resumed run reused what the killed one stored


class _Fixed:
    """A backend whose every answer is the same: only the cache is under test."""

    identity = "fixed"

    def score(self, requests):
        from labelbench.labeling.backend import Scored

        return [Scored((-0.1, -2.0), 10) for _ in requests]


def test_a_full_disk_is_one_line_naming_the_cache_and_keeps_what_was_stored(tmp_path):
    """Issue 25 item 11: SQLite's "database or disk is full" during a run."""
    cache = LabelCache(tmp_path / "cache")
    planned = make_planned(40)
    label(planned[:4], _Fixed(), cache=cache, progress=False, unit_items=2)
    kept = len(cache)
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
    try:
        label(planned, _Fixed(), cache=cache, progress=False, unit_items=2)
    except Exception as error:
        failure = error
    else:
        raise AssertionError("a full disk went unnoticed")
    from labelbench.errors import InputError

    assert isinstance(failure, InputError)
    message = str(failure)
    assert message.startswith(str(tmp_path / "cache" / CACHE_FILE)) and "\n" not in message
    assert "full" in message and "free space" in message
    assert len(cache) >= kept  # nothing stored before is lost
    cache.close()
