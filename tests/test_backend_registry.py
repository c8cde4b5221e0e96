"""Backends register themselves by name; open_labeler looks the spec's backend up (issue 28)."""

from __future__ import annotations

import pytest

from labelbench.config import LabelerSpec
from labelbench.errors import InputError
from labelbench.labeling import labeler


def test_every_configurable_backend_is_registered():
    assert set(labeler.BACKENDS) == {"transformers", "http", "chat", "vllm"}


def test_open_labeler_dispatches_through_the_registry(monkeypatch):
    opened = []
    monkeypatch.setitem(labeler.BACKENDS, "http", lambda spec: opened.append(spec) or "a labeler")
    spec = LabelerSpec(name="served", backend="http", url="http://127.0.0.1:1/v1")
    assert labeler.open_labeler(spec) == "a labeler" and opened == [spec]


def test_an_unknown_backend_names_the_known_ones(monkeypatch):
    monkeypatch.delitem(labeler.BACKENDS, "vllm")
    known = r"unknown backend 'vllm'.*known: chat, http, transformers"
    with pytest.raises(InputError, match=known):
        labeler.open_labeler(LabelerSpec(name="m", backend="vllm"))
