"""Capture from torch modules: op table (hooks + functional ops), end-to-end statistics."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from workloads.capture import capture_stats, capture_bundled, op_table  # noqa: E402
from workloads.errors import TraceError  # noqa: E402
from workloads.trace import Trace  # noqa: E402
from workloads.tiny.model import TinyUNet  # noqa: E402

torch.set_num_threads(1)


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        h = self.a(x)
        g = self.b(F.silu(h))
        s = (h + g).reshape(h.shape)             # functional add, then a view
        return torch.cat([s, x], dim=1) * 0.5    # functional concat; scalar scaling is not an op


def test_functional_ops_and_preds_by_tensor_identity():
    ops, unhooked = op_table(Functional(), lambda m: m(torch.randn(1, 2, 5, 5)))
    assert [(o.name, o.kind, o.preds) for o in ops] == [
        ("a", "conv2d", ()), ("root.silu0", "silu", (0,)), ("b", "conv2d", (1,)),
        ("root.add0", "add", (0, 2)), ("root.concat0", "concat", (3,)),
    ]
    assert ops[4].k == 6 and ops[0].macs == 25 * 4 * 2 * 9 and unhooked == 0


def test_functional_mac_calls_are_counted_not_hidden():
    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 2, 1, 1))
            self.c = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return F.conv2d(self.c(x), self.w)

    ops, unhooked = op_table(Raw(), lambda m: m(torch.randn(1, 2, 3, 3)))
    assert len(ops) == 1 and unhooked == 1


def test_tiny_unet_op_table():
    ops, unhooked = op_table(TinyUNet("relu").eval(), lambda m: m(torch.randn(2, 1, 16, 16), 10))
    kinds = [o.kind for o in ops]
    assert kinds.count("conv2d") == 24 and kinds.count("matmul_qk") == 1 and kinds.count("concat") == 3  # 2 skips + sin/cos
    assert unhooked == 0
    byname = {o.name: o for o in ops}
    cat = byname["cat1"]
    assert byname["attn1.add_res"].op_id in cat.preds and byname["up1.conv"].op_id in cat.preds
    qk, pv = byname["attn1.matmul_qk"], byname["attn1.matmul_pv"]
    assert (qk.n, qk.heads, qk.tokens, qk.kv_tokens, qk.head_dim) == (2, 4, 64, 64, 8)
    assert pv.preds == (byname["attn1.qkv"].op_id, byname["attn1.softmax"].op_id)
    assert byname["enc0.conv1"].input_from_relu and not byname["conv_in"].input_from_relu
    assert not byname["attn1.qkv"].input_from_relu   # reads a GroupNorm
    blocks = [o.block for o in ops]
    assert blocks == sorted(blocks) and blocks[-1] > blocks[0]


def conv_identity():
    m = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.eye(2).reshape(2, 2, 1, 1))
    return m


def test_end_to_end_stats_on_constructed_sequence():
    calib = [torch.zeros(1, 2, 10, 10) for _ in range(2)]
    for c in calib:
        c[0, 0, 0, 0] = 127.0                     # s8 = 1 for input and output; 1/200 clips at int4
    x0 = torch.zeros(1, 2, 10, 10)
    x1 = x0.clone()
    flat = x1.view(-1)
    flat[0:10] = 5.0       # int4 deltas, int3 outliers (shift 0)
    flat[10:20] = 2.0      # int4 deltas, int3 inliers
    flat[20:24] = -20.0    # int8 deltas
    model = conv_identity()
    ops, steps, quant = capture_stats(model, lambda m: [m(x) for x in (x0, x1)],
                                      lambda m: [m(x) for x in calib])
    q = quant["per_op"]["0"]
    assert (q["s_in"], q["k4"], q["k3_in"]) == (1.0, 0, 0)
    assert "delta.zero_frac" not in steps[0].scalars and steps[0].scalars["raw.zero_frac"][0] == 1.0
    s = steps[1].scalars
    assert s["delta.zero_frac"][0] == 176 / 200
    assert s["delta.int4_frac"][0] == 20 / 200 and s["delta.int8_frac"][0] == 4 / 200
    assert s["camd.rho_in"][0] == 14 / 200 and s["camd.rho_out"][0] == 14 / 200
    assert s["camd.sign_flip"][0] == 24 / 200
    assert s["raw.int4_outlier_frac"][0] == 4 / 200
    l1 = steps[1].arrays["mhd.l1_map"][0].astype(float)
    # channel 0: row 0 changes by 5, row 1 by 2, row 2 (x < 4) by 20; channel 1 never
    assert (l1[0, 0, 0], l1[0, 1, 0], l1[0, 2, 3], l1[0, 2, 4], l1[0, 3, 0]) == (2.5, 1.0, 10.0, 0.0, 0.0)


def test_capture_bundled_random_init_short(tmp_path):
    torch.manual_seed(0)
    p = tmp_path / "r.trace.zip"
    man = capture_bundled(TinyUNet("relu").eval(), steps=4, batch=2, seed=3, out=p, name="tiny-relu-random")
    assert man["calibration_seed"] == 1003 and man["synthetic_stats"] is False
    with Trace(p) as tr:
        assert tr.n_steps == 4 and tr.manifest["model"] == "tiny-relu-random"
        mac = [o.op_id for o in tr.ops if o.is_mac]
        s0, s1 = tr.step(0), tr.step(1)
        assert set(s0.scalars["raw.zero_frac"]) == set(mac)
        assert "delta.zero_frac" not in s0.scalars and set(s1.scalars["delta.zero_frac"]) == set(mac)
        relu_in = [o.op_id for o in tr.ops if o.input_from_relu]
        # post-ReLU inputs are at least half zeros after uint4
        assert relu_in and all(s1.arrays["sqdm.zero_frac_per_in_channel"][i].mean() > 0.3 for i in relu_in)
        qk = next(o.op_id for o in tr.ops if o.kind == "matmul_qk")
        assert qk in s1.scalars["kv_delta.zero_frac"]
    with pytest.raises(TraceError, match="calibration seed must differ"):
        capture_bundled(TinyUNet("silu"), steps=2, batch=1, seed=5, calib_seed=5, out=tmp_path / "x.zip")


def _mean_delta_zero(path):
    with Trace(path) as tr:
        return float(np.mean([v for i in range(1, tr.n_steps) for v in tr.step(i).scalars["delta.zero_frac"].values()]))


def test_bundled_trace_has_more_zero_deltas_than_random_init(tmp_path):
    from workloads.bundled import bundled_trace
    try:
        bundled = bundled_trace("tiny-silu")
    except TraceError:
        pytest.skip("bundled trace not generated (scripts/make_bundled_traces.sh)")
    torch.manual_seed(0)
    p = tmp_path / "random.trace.zip"
    capture_bundled(TinyUNet("silu").eval(), steps=50, batch=1, out=p, int8_need=False)
    trained, random = _mean_delta_zero(bundled), _mean_delta_zero(p)
    assert trained > random + 0.05, (trained, random)


def test_failing_forward_leaves_no_function_mode_behind():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        op_table(Bad(), lambda m: m(torch.randn(1, 1, 2, 2)))
    from torch.overrides import _get_current_function_mode_stack
    assert _get_current_function_mode_stack() == []


def test_row_sampled_attention_statistics_hold_to_the_exact_ones(tmp_path):
    """`max_stat_elems` (the SD-scale memory bound) takes attention statistics on every k-th query
    row: the other ops' statistics are unchanged, the attention ones stay close to every-row."""
    from workloads.quant import QuantConfig
    from workloads.tiny.model import load_tiny

    exact, sampled = tmp_path / "exact.zip", tmp_path / "sampled.zip"
    net = load_tiny("tiny-silu")
    capture_bundled(net, steps=6, batch=2, out=exact, int8_need=False, cfg=QuantConfig(max_stat_elems=0))
    capture_bundled(net, steps=6, batch=2, out=sampled, int8_need=False, cfg=QuantConfig(max_stat_elems=8192))
    with Trace(exact) as a, Trace(sampled) as b:
        strides = b.manifest["quantization"]["stat_row_stride"]
        attn = {op.op_id for op in a.ops if op.kind in ("matmul_qk", "matmul_pv")}
        assert set(map(int, strides)) == attn and all(k == 4 for k in strides.values())
        assert a.manifest["quantization"]["stat_row_stride"] == {}
        for i in range(1, 6):
            sa, sb = a.step(i).scalars, b.step(i).scalars
            for name in ("delta.zero_frac", "delta.int4_frac", "raw.zero_frac", "camd.sign_flip"):
                for op_id, v in sa[name].items():
                    if op_id in attn:
                        assert abs(sb[name][op_id] - v) < 0.08, (name, op_id, v, sb[name][op_id])
                    else:
                        assert sb[name][op_id] == v
