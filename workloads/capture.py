"""Capture a trace from any torch U-Net: forward hooks + a torch-function mode (torch needed here).

How ops are seen
- **Module ops** (forward hooks): ``nn.Conv2d`` → conv2d, ``nn.Linear`` → linear, modules whose
  class is named ``MatmulQK`` / ``MatmulPV`` (or mapped with ``kind_map``) → matmul_qk /
  matmul_pv (convention: ``MatmulQK(q, k)`` with q (B, heads, L, d), k (B, heads, Lk, d) *not*
  transposed; ``MatmulPV(p, v)`` with p (B, heads, L, Lk), v (B, heads, Lk, d)), GroupNorm,
  LayerNorm, SiLU, ReLU, GELU, Softmax, Upsample, AvgPool2d, and modules named ``Add`` /
  ``Concat``. A module with a kind is one op; what it calls inside is not looked at.
- **Functional ops** cannot be hooked (``a + b``, ``torch.cat``, ``F.silu``, ``F.gelu``,
  ``x.softmax()``, ``F.group_norm``, ``F.interpolate``, gating ``a * b``). A
  ``TorchFunctionMode`` active during each forward sees every torch call made *outside* kinded
  modules: tensor-tensor add / mul, cat, and the functional activations / norms / softmax /
  resampling are recorded as ops; every other call (views, reshapes, chunk, pad, scalar scaling)
  only passes the producer set of its inputs on to its outputs. That is how the DAG's
  predecessors are found by tensor identity through views. Functional MAC calls outside
  modules (``F.conv2d``, ``torch.matmul``, ``scaled_dot_product_attention``) are *not*
  recorded as ops; they are counted in the manifest (``capture.unhooked_mac_calls``) and a
  non-zero count is a warning that the op table is missing MACs (use ``kind_map`` or, for
  diffusers, ``diffusers_capture.prepare``).

Passes: (1) calibration run (seed different from the measured run): op table from its first
forward, max |x| per op; (2) the same calibration run again: overflow counts that fix the int4 /
uint4 / int3 shifts (quant.py); (3) the measured run: statistics per forward (= one sampler
step) via ``statistics.op_stats``. Each call of the root module's forward is one step.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import quant as Q
from .errors import TraceError
from .schema import OpRecord, expected_counts
from .statistics import OpQuant, OpTensors, op_stats, sign_flip_frac
from .trace import StepStats, TraceWriter, check_manifest

SAMPLE, CONTEXT = -1, -2
ACT_KINDS = ("silu", "relu", "gelu")
MODULE_KINDS: tuple[tuple[type, str], ...] = (
    (nn.Conv2d, "conv2d"), (nn.Linear, "linear"), (nn.GroupNorm, "groupnorm"),
    (nn.LayerNorm, "layernorm"), (nn.SiLU, "silu"), (nn.ReLU, "relu"), (nn.GELU, "gelu"),
    (nn.Softmax, "softmax"), (nn.Upsample, "upsample"), (nn.AvgPool2d, "downsample"),
)
NAME_KINDS = {"MatmulQK": "matmul_qk", "MatmulPV": "matmul_pv", "Add": "add", "Concat": "concat"}
F = torch.nn.functional
FUNC_KINDS: dict[Any, str] = {
    torch.add: "add", torch.Tensor.add: "add", torch.Tensor.__add__: "add",
    torch.Tensor.__radd__: "add", torch.Tensor.__iadd__: "add", torch.Tensor.add_: "add",
    torch.mul: "mul", torch.Tensor.mul: "mul", torch.Tensor.__mul__: "mul",
    torch.Tensor.__rmul__: "mul",
    torch.cat: "concat", torch.concat: "concat",
    F.silu: "silu", F.relu: "relu", torch.relu: "relu", F.gelu: "gelu",
    F.softmax: "softmax", torch.softmax: "softmax", torch.Tensor.softmax: "softmax",
    F.group_norm: "groupnorm", F.layer_norm: "layernorm", F.interpolate: "upsample",
    F.avg_pool2d: "downsample",
}
BINARY = ("add", "mul")
MAC_FUNCS = {F.conv2d, F.linear, torch.matmul, torch.bmm, torch.baddbmm, torch.Tensor.__matmul__,
             F.scaled_dot_product_attention}


class MatmulQK(nn.Module):
    """q @ kᵀ as a hookable module: q (B, heads, L, d), k (B, heads, Lk, d)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return torch.matmul(q, k.transpose(-1, -2))


class MatmulPV(nn.Module):
    """p @ v as a hookable module: p (B, heads, L, Lk), v (B, heads, Lk, d)."""

    def forward(self, p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.matmul(p, v)


def module_kind(mod: nn.Module, kind_map: dict | None = None) -> str | None:
    if kind_map:
        for key, kind in kind_map.items():
            if (isinstance(key, type) and isinstance(mod, key)) or key == type(mod).__name__:
                return kind
    for cls, kind in MODULE_KINDS:
        if isinstance(mod, cls):
            return kind
    return NAME_KINDS.get(type(mod).__name__)


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _nchw(t: torch.Tensor) -> tuple[int, int, int, int]:
    s = tuple(t.shape)
    if len(s) == 4:
        return s
    if len(s) == 3:
        return (s[0], s[2], s[1], 1)
    if len(s) == 2:
        return (s[0], s[1], 1, 1)
    if len(s) == 0:
        return (1, 1, 1, 1)
    return (s[0], int(np.prod(s[1:])), 1, 1)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def row_stride(op: OpRecord, max_elems: int) -> int:
    """Query-row stride at which an attention matmul's statistics are taken: 1 (every row) unless
    its input or output (B, heads, L, ·) holds more than ``max_elems`` elements (0: no limit).
    Other ops are always measured whole."""
    if max_elems <= 0 or op.kind not in ("matmul_qk", "matmul_pv"):
        return 1
    big = max(op.in_elems, op.out_elems)
    return max(1, -(-big // max_elems))


def _rows(op: OpRecord, a: np.ndarray, stride: dict[int, int]) -> np.ndarray:
    """Every ``stride``-th query row (axis -2) of an attention operand, as its own copy."""
    k = stride.get(op.op_id, 1)
    return a if k == 1 else np.ascontiguousarray(a[..., ::k, :])


class _Mode(TorchFunctionMode):
    def __init__(self, rec: "Recorder"):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rec = self.rec
        if rec.depth > 0 or not rec.in_forward:
            return out
        outs = _tensors(out)
        if not outs:
            return out
        ins = _tensors(args) + _tensors(kwargs)
        if func in MAC_FUNCS:
            rec.unhooked_mac_calls += 1
        kind = FUNC_KINDS.get(func)
        if kind in BINARY and not (len(ins) >= 2 and all(t.numel() > 1 for t in ins[:2])):
            kind = None
        if kind is not None:
            op_id = rec.record(("fn", rec.path(), kind), kind, None, ins, outs[0])
            prods = frozenset((op_id,))
        else:
            prods = rec.producers(ins)
        for t in outs:
            rec.prov[id(t)] = (weakref.ref(t), prods)
        return out


class Recorder:
    """Hooks a model; builds the op table on the first forward, then collects per forward."""

    def __init__(self, model: nn.Module, kind_map: dict | None = None):
        self.model = model
        self.kind_map = kind_map
        self.names = {m: n for n, m in model.named_modules()}
        self.kinds = {m: module_kind(m, kind_map) for m in model.modules()}
        self.profiles = {m: kernel_profile(m.weight) for m in model.modules()
                         if isinstance(m, nn.Conv2d) and m.weight.device.type != "meta"}
        """Each conv's normalised kernel profile, from its weights (none on the meta device)."""
        self.ops: list[OpRecord] | None = None
        self._rows: list[dict] = []
        self.keys: dict[tuple, int] = {}
        self.prov: dict[int, tuple[weakref.ref, frozenset]] = {}
        """id(tensor) → (weak reference, producer op ids): weak, so the forward's intermediate
        tensors are freed as torch frees them (strong references kept a whole SD forward alive)."""
        self.depth = 0
        self.in_forward = False
        self.stack: list[str] = []
        self.counters: dict[tuple, int] = {}
        self.blocks: dict[str, int] = {}
        self.block = 0
        self.forward_index = 0
        self.executed = 0
        self.unhooked_mac_calls = 0
        self.observer: Callable[[int, None, list, torch.Tensor], None] | None = None
        """Called as observer(op_id, None, inputs, output) for every op of every forward."""
        self.on_forward_end: Callable[[], None] | None = None
        self._handles: list = []
        self._mode = _Mode(self)

    # -- hooks ------------------------------------------------------------------------
    def attach(self) -> "Recorder":
        root = self.model
        self._handles.append(root.register_forward_pre_hook(self._root_pre, with_kwargs=True))
        for m in root.modules():
            self._handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._post, with_kwargs=True))
        self._handles.append(root.register_forward_hook(self._root_post, with_kwargs=True))
        return self

    def detach(self) -> None:
        if self.in_forward:           # a forward raised: leave no function mode behind
            self._mode.__exit__(None, None, None)
            self.in_forward = False
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _root_pre(self, mod, args, kwargs):
        self.in_forward = True
        self.prov.clear()
        self.counters.clear()
        self.stack = []
        self.depth = 0
        self.executed = 0
        for t in _tensors(args[:1]) or _tensors(kwargs.get("sample")):
            self.prov[id(t)] = (weakref.ref(t), frozenset((SAMPLE,)))
        ctx = kwargs.get("encoder_hidden_states", args[2] if len(args) > 2 else None)
        for t in _tensors(ctx):
            self.prov[id(t)] = (weakref.ref(t), frozenset((CONTEXT,)))
        self._mode.__enter__()

    def _root_post(self, mod, args, kwargs, out):
        self._mode.__exit__(None, None, None)
        self.in_forward = False
        if self.ops is None:
            self.ops = [OpRecord(**r) for r in self._rows]
            if not self.ops:
                raise TraceError("capture: the forward executed no recognisable op")
        elif self.executed != len(self.ops):
            raise TraceError(
                f"capture: forward {self.forward_index} executed {self.executed} ops, the first executed {len(self.ops)}"
            )
        self.prov.clear()
        self.forward_index += 1
        if self.on_forward_end is not None:
            self.on_forward_end()

    def _pre(self, mod, args, kwargs):
        if not self.in_forward:
            return
        self.stack.append(self.names[mod])
        if self.kinds[mod] is not None:
            self.depth += 1

    def _post(self, mod, args, kwargs, out):
        if not self.in_forward:
            return
        kind = self.kinds[mod]
        if kind is not None:
            self.depth -= 1
        name = self.stack.pop() if self.stack else self.names[mod]
        if kind is None or self.depth > 0:
            return
        ins = _tensors(args) + _tensors(kwargs)
        outs = _tensors(out)
        if not ins or not outs:
            return
        op_id = self.record(("mod", name), kind, mod, ins, outs[0])
        for t in outs:
            self.prov[id(t)] = (weakref.ref(t), frozenset((op_id,)))

    # -- bookkeeping ------------------------------------------------------------------
    def path(self) -> str:
        return self.stack[-1] if self.stack else ""

    def producers(self, ins: Iterable[torch.Tensor]) -> frozenset:
        out: set = set()
        for t in ins:
            entry = self.prov.get(id(t))
            if entry is not None and entry[0]() is t:
                out |= entry[1]
        return frozenset(out)

    def _block_of(self, path: str) -> int:
        if path:
            parts = path.split(".")
            top = parts[0]
            child = getattr(self.model, top, None)
            if isinstance(child, (nn.ModuleList, nn.Sequential)) and len(parts) > 1:
                top = f"{top}.{parts[1]}"
            if top not in self.blocks:
                self.blocks[top] = len(self.blocks)
            self.block = self.blocks[top]
        return self.block

    def record(self, key0: tuple, kind: str, mod, ins, out) -> int:
        n_call = self.counters.get(key0, 0)
        self.counters[key0] = n_call + 1
        key = key0 + (n_call,)
        self.executed += 1
        if self.ops is None:
            op_id = len(self._rows)
            self.keys[key] = op_id
            self._rows.append(self._row(op_id, key, kind, mod, ins, out))
        else:
            op_id = self.keys.get(key)
            if op_id is None:
                raise TraceError(f"capture: forward {self.forward_index} ran op {key} not seen in the first forward")
        if self.observer is not None:
            self.observer(op_id, None, ins, out)
        return op_id

    def _row(self, op_id, key, kind, mod, ins, out) -> dict:
        path = key[1]
        name = path if key[0] == "mod" else f"{path or 'root'}.{key[2]}{key[3]}"
        if key[0] == "mod" and key[2]:
            name = f"{name}#{key[2]}"
        x = ins[0]
        first = sorted(p for p in self.producers([x]) if p >= 0)
        preds = sorted(p for p in self.producers(ins) if p >= 0)
        relu_in = bool(first) and all(self._rows[p]["kind"] == "relu" for p in first)
        row: dict[str, Any] = dict(op_id=op_id, name=name, kind=kind, block=self._block_of(path),
                                   preds=tuple(preds), input_from_relu=relu_in)
        prods = self.producers([x])
        if kind == "conv2d":
            n, c, h, w = x.shape
            r, s = mod.kernel_size
            pad = mod.padding if isinstance(mod.padding, tuple) else (0, 0)
            row.update(n=n, c=c, h=h, w=w, k=mod.out_channels, r=r, s=s, stride=mod.stride[0],
                       pad=pad[0], groups=mod.groups, out_h=out.shape[2], out_w=out.shape[3])
            row["kernel_profile"] = self.profiles.get(mod, ())
        elif kind == "linear":
            n, cin = x.shape[0], x.shape[-1]
            tokens = x.numel() // (n * cin)
            row.update(n=n, c=cin, h=tokens, w=1, k=mod.out_features, out_h=tokens, out_w=1,
                       cross_attn_kv=bool(prods) and prods <= {CONTEXT})
        elif kind in ("matmul_qk", "matmul_pv"):
            b = ins[1]
            heads = x.shape[1] if x.dim() == 4 else int(getattr(mod, "heads", 1))
            n = x.shape[0] if x.dim() == 4 else x.shape[0] // heads
            bp = [p for p in self.producers([b]) if p >= 0]
            cross = bool(bp) and all(self._rows[p].get("cross_attn_kv") for p in bp)
            L, d = x.shape[-2], b.shape[-1]
            Lk = b.shape[-2]
            row.update(n=n, heads=heads, tokens=L, kv_tokens=Lk, head_dim=d if kind == "matmul_pv" else x.shape[-1],
                       h=L, w=1, out_h=L, out_w=1, cross_attn_kv=cross)
            if kind == "matmul_qk":
                row.update(c=x.shape[-1], k=Lk)
            else:
                row.update(c=Lk, k=d)
        else:
            n, c, h, w = _nchw(x)
            on, oc, oh, ow = _nchw(out)
            row.update(n=n, c=oc if kind == "concat" else c, h=h, w=w, k=oc, out_h=oh, out_w=ow,
                       in_elems=sum(t.numel() for t in ins), out_elems=out.numel())
        row = {k: (int(v) if isinstance(v, (int, np.integer, torch.SymInt)) and not isinstance(v, bool) else v)
               for k, v in row.items()}
        counts = expected_counts(OpRecord(**row))
        row.update(counts)
        return row


def kernel_profile(weight: torch.Tensor) -> tuple[float, ...]:
    """A conv's normalised kernel profile: Σ|W| over output and input channels per tap (r, s),
    divided by the total, row-major, rounded to 6 digits (uniform for an all-zero weight)."""
    prof = weight.detach().abs().double().sum(dim=(0, 1)).flatten()
    total = float(prof.sum())
    if total <= 0:
        return tuple([round(1 / prof.numel(), 6)] * prof.numel())
    return tuple(round(float(v) / total, 6) for v in prof)


# ---------------------------------------------------------------------------- capture
def op_table(model: nn.Module, forward: Callable[[nn.Module], Any], kind_map: dict | None = None):
    """Op table of one forward (``forward(model)`` must call the model once); no statistics."""
    rec = Recorder(model, kind_map).attach()
    try:
        with torch.no_grad():
            forward(model)
    finally:
        rec.detach()
    if rec.ops is None:
        raise TraceError("capture: forward() did not call the model")
    return rec.ops, rec.unhooked_mac_calls


def capture_stats(
    model: nn.Module,
    run: Callable[[nn.Module], Any],
    calib_run: Callable[[nn.Module], Any],
    *,
    cfg: Q.QuantConfig = Q.QuantConfig(),
    kind_map: dict | None = None,
    int8_need: bool = True,
    sink: Callable[[list[OpRecord], StepStats], None] | None = None,
) -> tuple[list[OpRecord], list[StepStats], dict]:
    """Three passes (see module doc); returns (ops, per-step stats, quantization info).

    With `sink`, each measured step goes to ``sink(ops, stats)`` as its forward ends and is not
    kept (the returned list is empty): capture then holds one step's statistics at a time."""
    torch.set_num_threads(1)
    rec = Recorder(model, kind_map).attach()
    try:
        # pass 1: op table + max |x|, |b|, |y|
        maxes: dict[int, list[float]] = {}

        def obs_max(op_id, _op, ins, out):
            m = maxes.setdefault(op_id, [0.0, 0.0, 0.0])
            m[0] = max(m[0], float(ins[0].detach().abs().max()))
            if len(ins) > 1:
                m[1] = max(m[1], float(ins[1].detach().abs().max()))
            m[2] = max(m[2], float(out.detach().abs().max()))

        rec.observer = obs_max
        with torch.no_grad():
            calib_run(model)
        ops = rec.ops
        if ops is None:
            raise TraceError("capture: the calibration run did not call the model")
        mac = [op.op_id for op in ops if op.is_mac]
        stride = {op.op_id: row_stride(op, cfg.max_stat_elems) for op in ops if op.is_mac}
        qp = {i: OpQuant(s_in=Q.int8_scale(maxes[i][0]), s_b=Q.int8_scale(maxes[i][1]),
                         s_out=Q.int8_scale(maxes[i][2])) for i in mac}

        # pass 2: shift calibration
        cnt = {i: {"n": 0, "nd": 0, "ny": 0, "k4": 0, "ku": 0, "k3": 0, "k3o": 0} for i in mac}
        prev: dict[int, tuple] = {}

        def obs_count(op_id, op, ins, out):
            if op_id not in qp:
                return
            q, c = qp[op_id], cnt[op_id]
            x, y = _rows(ops[op_id], _np(ins[0]), stride), _rows(ops[op_id], _np(out), stride)
            q8 = Q.quantize_int8(x, q.s_in)
            c["n"] += q8.size
            c["k4"] = c["k4"] + Q.overflow_counts_int4(q8)
            c["ku"] = c["ku"] + Q.overflow_counts_uint4(q8)
            if op_id in prev:
                px, py = prev[op_id]
                c["nd"] += x.size
                c["k3"] = c["k3"] + Q.overflow_counts_int3(x - px, q.s_in)
                c["ny"] += y.size
                c["k3o"] = c["k3o"] + Q.overflow_counts_int3(y - py, q.s_out)
            prev[op_id] = (x, y)

        rec.observer = obs_count
        with torch.no_grad():
            calib_run(model)
        prev.clear()  # one step of tensors: free it before the measured run holds its own
        for i in mac:
            c, q = cnt[i], qp[i]
            q.k4 = Q.choose_shift(c["k4"], c["n"], cfg.int4_clip_frac)
            q.ku = Q.choose_shift(c["ku"], c["n"], cfg.int4_clip_frac)
            if c["nd"]:
                q.k3_in = Q.choose_shift(c["k3"], c["nd"], cfg.int3_outlier_frac)
                q.k3_out = Q.choose_shift(c["k3o"], c["ny"], cfg.int3_outlier_frac)

        # pass 3: measurement
        steps: list[StepStats] = []
        prev_t: dict[int, OpTensors] = {}
        cur = StepStats()

        def obs_measure(op_id, op, ins, out):
            op = ops[op_id]
            if op.is_mac:
                t = OpTensors(x=_rows(op, _np(ins[0]), stride), y=_rows(op, _np(out), stride),
                              b=_np(ins[1]) if len(ins) > 1 and op.kind.startswith("matmul") else None)
                st = op_stats(op, qp[op_id], t, prev_t.get(op_id), int8_need=int8_need)
                prev_t[op_id] = t
            elif op.kind in ACT_KINDS:
                t = OpTensors(x=_np(ins[0]))
                st = {}
                if op_id in prev_t:
                    st["camd.sign_flip"] = sign_flip_frac(t.x, prev_t[op_id].x)
                prev_t[op_id] = t
            else:
                return
            for name, v in st.items():
                target = cur.arrays if isinstance(v, np.ndarray) else cur.scalars
                target.setdefault(name, {})[op_id] = v

        def end_forward():
            nonlocal cur
            if sink is None:
                steps.append(cur)
            else:
                sink(ops, cur)
            cur = StepStats()

        rec.observer = obs_measure
        rec.on_forward_end = end_forward
        with torch.no_grad():
            run(model)
    finally:
        rec.detach()
    quant = {
        "config": cfg.describe(),
        "per_op": {str(i): {"s_in": q.s_in, "s_b": q.s_b, "s_out": q.s_out, "k4": q.k4, "ku": q.ku,
                            "k3_in": q.k3_in, "k3_out": q.k3_out} for i, q in qp.items()},
        "weight_int8_zero_frac": _weight_zero_fracs(model, rec, ops),
        "stat_row_stride": {str(i): k for i, k in stride.items() if k > 1},
        "unhooked_mac_calls": rec.unhooked_mac_calls,
    }
    return ops, steps, quant


def _weight_zero_fracs(model, rec: Recorder, ops) -> dict[str, float]:
    out = {}
    by_name = {n: m for n, m in model.named_modules()}
    for op in ops:
        if op.kind in ("conv2d", "linear"):
            m = by_name.get(op.name.split("#")[0])
            w = getattr(m, "weight", None)
            if isinstance(w, torch.Tensor) and w.device.type != "meta":
                codes, _ = Q.weight_int8(_np(w))
                out[str(op.op_id)] = float((codes == 0).mean())
    return out


def capture_trace(
    model: nn.Module,
    run: Callable[[nn.Module], Any],
    calib_run: Callable[[nn.Module], Any],
    out: str | os.PathLike,
    manifest: dict,
    **kw,
) -> dict:
    """Capture and write a trace, streamed step by step (`TraceWriter`); ``manifest`` must give
    model, steps, batch (others added). Nothing is left at ``out`` if capture fails."""
    check_manifest({"synthetic_stats": False, **manifest})
    writer: list[TraceWriter] = []

    def sink(ops, stats):
        if not writer:
            writer.append(TraceWriter(out, ops))
        writer[0].add(stats)

    try:
        ops, _, quant = capture_stats(model, run, calib_run, sink=sink, **kw)
        done = writer[0].count if writer else 0
        if done != len(manifest["steps"]):
            raise TraceError(f"capture: the run made {done} forwards, manifest.steps lists {len(manifest['steps'])}")
        man = {"synthetic_stats": False, "quantization": quant, **manifest}
        writer[0].finish(man)
    finally:
        if writer:
            writer[0].abort()
    return man


# ---------------------------------------------------------------------------- bundled models
def _bundled_net(model: str | nn.Module, name: str | None):
    """(module, label, checkpoint path or None) of a bundled model name, checkpoint or module."""
    from .small import model as small
    from .tiny import model as tiny

    if isinstance(model, nn.Module):
        return model, name or f"{type(model).__name__}-custom", None
    if model in tiny.MODEL_NAMES:
        return tiny.load_tiny(model), model, tiny.checkpoint_path(model)
    if model in small.MODEL_NAMES:
        return small.load_small(model), model, small.checkpoint_path(model)
    if os.path.isfile(str(model)):
        ckpt = torch.load(model, map_location="cpu", weights_only=True)
        net = (small.SmallUNet(act=ckpt["act"], channels=tuple(ckpt["channels"])) if "channels" in ckpt
               else tiny.TinyUNet(act=ckpt["act"]))
        net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
        return net.eval(), name or os.path.basename(str(model)), model
    names = ", ".join(tiny.MODEL_NAMES + small.MODEL_NAMES)
    raise TraceError(f"--model: unknown model {model!r}; use {names}, a checkpoint path, a zoo name or a "
                     "diffusers directory")


def calibration_seed(seed: int, calib_seed: int | None) -> int:
    """The calibration run's seed: `calib_seed`, or seed + 1000; it must differ from `seed`."""
    calib_seed = seed + 1000 if calib_seed is None else calib_seed
    if calib_seed == seed:
        raise TraceError("capture: the calibration seed must differ from the measurement seed")
    return calib_seed


def capture_bundled(model: str | nn.Module = "tiny-silu", *, steps: int = 50, batch: int = 4, seed: int = 0,
                    calib_seed: int | None = None, out: str | os.PathLike, int8_need: bool = True,
                    name: str | None = None, command: str | None = None,
                    cfg: Q.QuantConfig = Q.QuantConfig(), weights: str | None = None) -> dict:
    """Capture a DDIM run of a bundled model (tiny or small; a name, a .pt path or a module).
    `weights` goes to the manifest; default "trained" for a checkpoint, "random" for a module."""
    torch.set_num_threads(1)
    from .tiny import model as tiny

    net, label, ckpt = _bundled_net(model, name)
    ckpt_sha = None
    if ckpt is not None:
        import hashlib

        with open(ckpt, "rb") as f:
            ckpt_sha = hashlib.sha256(f.read()).hexdigest()[:16]
    calib_seed = calibration_seed(seed, calib_seed)
    manifest = {
        "model": label,
        "model_config": {"class": type(net).__name__, "act": getattr(net, "act_name", None),
                         "channels": list(getattr(net, "channels", tiny.CHANNELS)), "heads": tiny.HEADS},
        "image_size": [net.image_size, net.image_size],
        "sampler": "ddim(eta=0)",
        "steps": tiny.ddim_timesteps(steps),
        "batch": batch,
        "cfg": False,
        "seed": seed,
        "calibration_seed": calib_seed,
        "weights": weights or ("trained" if ckpt is not None else "random"),
        "provenance": {"generator": "workloads.capture.capture_bundled", "command": command,
                       "checkpoint_sha256_16": ckpt_sha, "torch": torch.__version__},
    }
    return capture_trace(
        net, lambda m: tiny.ddim_sample(m, batch, steps, seed),
        lambda m: tiny.ddim_sample(m, batch, steps, calib_seed), out, manifest, int8_need=int8_need, cfg=cfg,
    )
