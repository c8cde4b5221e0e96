"""Decoder layers as compiled graphs (``torch.compile``, inductor), their attention left eager.

Between a decoder layer's matrix multiplies sit element-wise passes: RMSNorm (in float32 and
back), the gated MLP's activation and product, residual adds. Eager PyTorch runs each as its own
pass over memory. Where the multiplies are fast (bfloat16 on AMX), those passes weigh: in a
profile of the 1.5B's 0-shot scoring they took about a quarter of the time (bench/README.md,
2026-12-06). Inductor fuses them into a few loops (measured 1.2-1.3x faster scoring at the four
built-in sizes: docs/engine.md). The attention module stays eager: it reads
this package's layouts (new Python objects every call) and grows the key/value cache in place,
which a graph would have to be rebuilt for. In the graph, a gated MLP's gate and up projections
run in pieces of ``MLP_CHUNK`` output features (``_chunked_mlp``): the 1.5B's whole MLP ran
1.26x faster so on the AMX CPU of 2026-12-07 (``bench/mlp_pieces.py``).

Compiling changes the order of floating-point operations, not what is computed: labels agree with
the eager model's to rounding (``tests/test_compiled.py``), as with a different batch.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
import torch.nn.functional as F

MIN_PARAMETERS = 50_000_000
"""``compile: null`` (auto) compiles models at least this large on a CPU: below it, the seconds
a first call spends compiling outweigh what a run saves."""


def _layers(model: Any) -> list[torch.nn.Module]:
    """``model.base_model.layers`` when each has a ``self_attn`` module (the layers this module
    compiles), else []."""
    layers = list(getattr(model.base_model, "layers", None) or [])
    return layers if all(hasattr(layer, "self_attn") for layer in layers) else []


def cannot_compile(model: Any) -> str | None:
    """Why ``model``'s decoder layers cannot be compiled here, or None if they can.

    Needs a CPU model (inductor's GPU path needs Triton, not checked here), a C++ compiler on
    PATH (inductor writes C++ kernels), and decoder layers with a ``self_attn`` module at
    ``model.base_model.layers``."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        return f"the model is on {device.type}: only CPU models are compiled"
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        return "no C++ compiler (g++, c++ or clang++) on PATH"
    if not _layers(model):
        return f"{type(model).__name__} has no decoder layers with self_attn at base_model.layers"
    return None


def compile_layers(model: Any) -> str | None:
    """Compile each decoder layer of ``model`` in place (dynamic shapes), its ``self_attn`` run
    eagerly inside it, and build the first graphs with a 5-token forward pass.

    Returns None when the layers run compiled (at once if they already did), else why not;
    nothing is changed then: a failed compilation (a broken compiler, an operation inductor
    refuses) is undone and the model runs eagerly. Other inputs (the packed and padded layouts
    of scoring passes, other batch sizes) compile on first use.
    """
    reason = cannot_compile(model)
    if reason is not None:
        return reason
    if is_compiled(model):
        return None
    for layer in _layers(model):
        _replace_forward(layer.self_attn, torch.compiler.disable(layer.self_attn.forward))
        mlp = getattr(layer, "mlp", None)
        chunked = None if mlp is None else _chunked_mlp(mlp)
        if chunked is not None:
            _replace_forward(mlp, _when_compiling(chunked, mlp.forward))
        layer._compiled_call_impl = _scoring_graph(layer)
    try:
        with torch.inference_mode(), scoring():
            model.base_model(input_ids=torch.ones((1, 5), dtype=torch.long), use_cache=False)
    except Exception as error:  # any compiler failure means: run eagerly
        uncompile_layers(model)
        text = str(error).strip()
        first = text.splitlines()[0][:200] if text else ""
        return f"compiling failed ({type(error).__name__}: {first})"
    return None


_SCORING: ContextVar[bool] = ContextVar("labelbench_compiled_scoring", default=False)


@contextmanager
def scoring() -> Iterator[None]:
    """Within it, compiled layers run their graphs: ``TransformersBackend.score``'s passes and
    the prompt passes of rationales.

    Outside it they run eagerly: rationales' decoding steps and their answers. A decoding step
    (one position a row) has too little element-wise work to win back a graph's guards: no
    faster at 1.5B (64 chains: 245 s compiled against 240 s, ``bench/README.md``, "Measured
    (2026-12-07, later: kept heap, MLP in pieces)"; slower at 135M in a run of 2026-12-06 whose
    figures were not kept). In bfloat16 a graph rounds differently
    (RMSNorm is not rounded between its steps), so a chain of thought whose prompt ran compiled
    may turn at a near tie where the eager model's would not, as on another CPU's kernels."""
    token = _SCORING.set(True)
    try:
        yield
    finally:
        _SCORING.reset(token)


def runs_graphs(model: Any) -> bool:
    """Whether ``model``'s layers run compiled graphs now: compiled, and within ``scoring()``."""
    return _SCORING.get() and is_compiled(model)


def _scoring_graph(layer: torch.nn.Module) -> Callable[..., Any]:
    """``layer``'s call: its compiled graph within ``scoring()``, else eager."""
    graph = torch.compile(layer._call_impl, dynamic=True)

    def call(*args: Any, **kwargs: Any) -> Any:
        if _SCORING.get():
            return graph(*args, **kwargs)
        return layer._call_impl(*args, **kwargs)

    return call


MLP_CHUNK = 512
"""Output features of the gate and up projections per matrix multiply in a compiled graph."""


def _chunked_mlp(mlp: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A gated MLP's forward, ``down(act(gate(x)) * up(x))``, with the gate and up projections
    computed ``MLP_CHUNK`` output features at a time; None for a module that is not such an MLP
    (checked on its names and on one small input against its own forward) or is too narrow.

    Why: on the CPU the whole MLP of Qwen2.5-1.5B (4,000 tokens, bfloat16 on AMX) ran at 865
    GFLOP/s with its gate and up projections whole and at 1,086 in 512-column pieces (neutral in
    float32; ``bench/mlp_pieces.py``): ``bench/README.md``,
    "Measured (2026-12-07, later: kept heap, MLP in pieces)". Each output column is the same
    dot product either way; only the library's blocking, hence the rounding of the float32
    sums, may differ."""
    names = ("gate_proj", "up_proj", "down_proj")
    gate, up, down = (getattr(mlp, name, None) for name in names)
    act = getattr(mlp, "act_fn", None)
    if not all(isinstance(m, torch.nn.Linear) for m in (gate, up, down)) or not callable(act):
        return None
    assert isinstance(gate, torch.nn.Linear) and isinstance(up, torch.nn.Linear)
    width, chunk = gate.out_features, MLP_CHUNK
    if width <= chunk or up.out_features != width or gate.bias is not None or up.bias is not None:
        return None

    def forward(x: torch.Tensor) -> torch.Tensor:
        pieces = [
            act(F.linear(x, gate.weight[start : start + chunk]))
            * F.linear(x, up.weight[start : start + chunk])
            for start in range(0, width, chunk)
        ]
        return down(torch.cat(pieces, dim=-1))

    weight = gate.weight
    generator = torch.Generator().manual_seed(width)
    probe = torch.randn(3, gate.in_features, generator=generator).to(weight.device, weight.dtype)
    with torch.inference_mode():
        ours, theirs = forward(probe).float(), mlp(probe).float()
    tolerance = 1e-4 if weight.dtype == torch.float32 else 2e-2
    if not torch.linalg.vector_norm(ours - theirs) <= tolerance * torch.linalg.vector_norm(theirs):
        return None  # another formula behind the same names
    return forward


def _when_compiling(
    graph_forward: Callable[[torch.Tensor], torch.Tensor],
    eager_forward: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``graph_forward`` where ``torch.compile`` traces the call, ``eager_forward`` elsewhere
    (eager calls, decoding steps among them, run the module's own forward)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return graph_forward(x)
        return eager_forward(x)

    return forward


def uncompile_layers(model: Any) -> None:
    """Undo ``compile_layers``: the layers run eagerly again (their compiled graphs are kept by
    torch and reused if they are compiled again)."""
    for layer in _layers(model):
        layer._compiled_call_impl = None
        for module in (layer.self_attn, getattr(layer, "mlp", None)):
            if module is not None and _BEFORE in vars(module):
                before = vars(module).pop(_BEFORE)
                if before is None:
                    del module.forward
                else:  # a forward set on the instance before compiling (a hook's, say)
                    module.forward = before


_BEFORE = "_labelbench_forward_before"


def _replace_forward(module: torch.nn.Module, forward: Callable[..., Any]) -> None:
    """Set ``module.forward`` on the instance, keeping what the instance had (None: nothing)."""
    vars(module)[_BEFORE] = vars(module).get("forward")
    module.forward = forward


def is_compiled(model: Any) -> bool:
    """Whether ``model``'s decoder layers run compiled."""
    layers = _layers(model)
    return bool(layers) and all(layer._compiled_call_impl is not None for layer in layers)


def want_compiled(setting: bool | None, model: Any) -> bool:
    """Whether to compile ``model``'s layers: ``setting`` when given, else (auto) when it is a CPU
    model of at least ``MIN_PARAMETERS`` parameters with decoder layers this module knows."""
    if setting is not None:
        return setting
    return (
        next(model.parameters()).device.type == "cpu"
        and sum(p.numel() for p in model.parameters()) >= MIN_PARAMETERS
        and bool(_layers(model))
    )


def warn_eager(name: str, reason: str) -> None:
    """A warning on stderr that ``name``'s decoder layers run uncompiled, and why."""
    print(
        f"warning: {name}: decoder layers run uncompiled (slower; set compile: false to silence "
        f"this): {reason}",
        file=sys.stderr,
    )
