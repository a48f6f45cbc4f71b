"""Shape-only zoo: op tables from diffusers configs (meta device) and transferred statistics."""

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from workloads.capture import capture_bundled  # noqa: E402
from workloads.tiny.model import TinyUNet  # noqa: E402
from workloads.trace import Trace  # noqa: E402
from workloads.zoo import write_zoo_trace, zoo_ops  # noqa: E402


def test_sd15_op_table_counts_and_macs():
    ops = zoo_ops("sd15", batch=1)
    mac = Counter(o.kind for o in ops if o.is_mac)
    assert sum(mac.values()) == 346
    assert (mac["conv2d"], mac["linear"], mac["matmul_qk"] + mac["matmul_pv"]) == (98, 184, 64)
    assert sum(o.macs for o in ops) / 1e9 == pytest.approx(401.6, rel=0.01)
    cross_qk = [o for o in ops if o.kind == "matmul_qk" and o.cross_attn_kv]
    assert len(cross_qk) == 16 and {o.kv_tokens for o in cross_qk} == {77}
    assert {o.tokens for o in cross_qk} == {4096, 1024, 256, 64}
    # GEGLU feed-forward: gelu gate times value, 16 transformer blocks
    kinds = Counter(o.kind for o in ops)
    assert kinds["gelu"] == 16 and kinds["layernorm"] == 48
    # CFG: the default batch is 2, twice the MACs
    assert sum(o.macs for o in zoo_ops("sd15") if o.is_mac) == 2 * sum(o.macs for o in ops)


def test_cifar10_and_ldm_tables():
    cifar = zoo_ops("cifar10")
    qk = [o for o in cifar if o.kind == "matmul_qk"]
    assert all(o.heads == 1 for o in qk)   # single-head attention at 16x16 (2 down, 3 up) and mid 4x4
    assert sorted(o.tokens for o in qk) == [16] + [256] * 5
    assert 5.5e9 < sum(o.macs for o in cifar) < 7e9
    ldm = zoo_ops("ldm256")
    assert {o.tokens for o in ldm if o.kind == "matmul_qk"} == {1024, 256, 64}   # 32, 16, 8 (+ mid)


def test_zoo_trace_transfers_stats_from_a_source(tmp_path):
    torch.manual_seed(0)
    src = tmp_path / "src.zip"     # random-init source: exercises the transfer, not a workload
    capture_bundled(TinyUNet("silu").eval(), steps=5, batch=1, out=src, int8_need=False)
    out = tmp_path / "sd.zip"
    man = write_zoo_trace("sd15", out, steps=3, source=str(src), arrays=True)
    assert man["stats_source"]["source_step_of_step"] == [0, 2, 4]
    with Trace(out) as tr, Trace(src) as s:
        assert tr.synthetic_stats and tr.n_steps == 3 and len([o for o in tr.ops if o.is_mac]) == 346
        first_conv = next(o for o in tr.ops if o.kind == "conv2d")
        src_first = next(o for o in s.ops if o.kind == "conv2d")
        st, ss = tr.step(1), s.step(2)
        assert st.scalars["delta.zero_frac"][first_conv.op_id] == ss.scalars["delta.zero_frac"][src_first.op_id]
        assert "delta.zero_frac" not in tr.step(0).scalars
        kv = [o for o in tr.ops if o.cross_attn_kv]
        assert all(st.scalars[("kv_delta" if o.kind.startswith("matmul") else "delta") + ".zero_frac"][o.op_id] == 1.0
                   for o in kv)
        v = st.arrays["sqdm.zero_frac_per_in_channel"][first_conv.op_id]
        assert v.shape == (first_conv.c,)
        m = st.arrays["mhd.l1_map"][first_conv.op_id]
        assert m.shape == (2, 64, 64) and np.all(m >= 0)
