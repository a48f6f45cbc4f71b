"""diffusers U-Nets through capture: tiny random-init configs (no download; not workload statistics)."""

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from workloads.capture import capture_trace  # noqa: E402
from workloads.diffusers_capture import ddim_run, prepare  # noqa: E402
from workloads.trace import Trace  # noqa: E402

torch.set_num_threads(1)


def tiny_cond_unet():
    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8).eval()


def test_conditional_unet_capture(tmp_path):
    unet = prepare(tiny_cond_unet())
    ctx = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    ts = []
    man = capture_trace(unet, lambda m: ts.extend(ddim_run(m, 3, 1, seed=0, context=ctx)),
                        lambda m: ddim_run(m, 3, 1, seed=1, context=ctx), tmp_path / "c.zip",
                        {"model": "tiny-cond-random", "steps": [0, 0, 0], "batch": 1})
    assert man["quantization"]["unhooked_mac_calls"] == 0
    with Trace(tmp_path / "c.zip") as tr:
        kinds = [o.kind for o in tr.ops]
        # 4 transformers (down 1, mid 1, up 2), each self-attn + cross-attn -> 8 QK and 8 PV
        assert kinds.count("matmul_qk") == 8 and kinds.count("matmul_pv") == 8
        assert "gelu" in kinds and "mul" in kinds and "layernorm" in kinds   # GEGLU feed-forward
        cross = [o for o in tr.ops if o.kind == "matmul_qk" and o.cross_attn_kv]
        assert len(cross) == 4 and all(o.kv_tokens == 77 and o.tokens in (64, 16) for o in cross)
        kv_lin = [o for o in tr.ops if o.kind == "linear" and o.cross_attn_kv]
        assert len(kv_lin) == 8 and all(o.h == 77 and o.c == 32 for o in kv_lin)
        s2 = tr.step(2)
        # the text states do not change between steps: K/V deltas are exactly zero (measured)
        for o in cross:
            assert s2.scalars["kv_delta.zero_frac"][o.op_id] == 1.0
        for o in kv_lin:
            assert s2.scalars["delta.zero_frac"][o.op_id] == 1.0
        selfqk = [o for o in tr.ops if o.kind == "matmul_qk" and not o.cross_attn_kv]
        assert all(s2.scalars["kv_delta.zero_frac"][o.op_id] < 1.0 for o in selfqk)


def test_unconditional_unet_op_table_matches_module_count():
    from workloads.capture import op_table

    torch.manual_seed(0)
    unet = prepare(diffusers.UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8))
    ops, unhooked = op_table(unet, lambda m: m(torch.randn(1, 3, 8, 8), 10))
    n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in unet.modules())
    n_lin = sum(isinstance(m, torch.nn.Linear) for m in unet.modules())
    kinds = [o.kind for o in ops]
    assert unhooked == 0
    assert kinds.count("conv2d") == n_conv and kinds.count("linear") == n_lin
    assert kinds.count("matmul_qk") == kinds.count("matmul_pv") == 4   # 1 down + 2 up + 1 mid


def _cli(*argv):
    from difftlm.cli import main

    return main([str(a) for a in argv])


def test_capture_from_a_local_pipeline_directory(tmp_path, capsys):
    """`--model DIR` loads a saved pipeline's U-Net with from_pretrained on the path (offline);
    the trace says weights = local and runs guidance on seeded text states."""
    tiny_cond_unet().save_pretrained(tmp_path / "pipe" / "unet")
    out = tmp_path / "local.trace.zip"
    assert _cli("trace", "capture", "--model", tmp_path / "pipe", "--steps", 2, "--batch", 1, "--out", out) == 0
    with Trace(out) as tr:
        m = tr.manifest
        assert m["weights"] == "local" and m["cfg"] is True and m["batch"] == 2 and tr.n_steps == 2
        assert m["model_config"]["class"] == "UNet2DConditionModel" and m["model_config"]["cross_attention_dim"] == 32
        convs = [o for o in tr.ops if o.kind == "conv2d"]
        assert all(len(o.kernel_profile) == o.r * o.s for o in convs)
    assert "mean nothing" not in capsys.readouterr().out
    bad = tmp_path / "empty"
    bad.mkdir()
    assert _cli("trace", "capture", "--model", bad, "--steps", 2, "--out", tmp_path / "x.zip") == 2
    assert "no config.json" in capsys.readouterr().err and not (tmp_path / "x.zip").exists()


def test_random_weights_are_flagged_in_the_trace_and_by_compare(tmp_path, capsys):
    from workloads.capture import capture_bundled
    from workloads.tiny.model import TinyUNet

    p = tmp_path / "random.trace.zip"
    torch.manual_seed(0)
    capture_bundled(TinyUNet("silu").eval(), steps=2, batch=1, out=p, int8_need=False)
    assert Trace(p).weights == "random"
    assert _cli("compare", "--trace", p, "--designs", "dense", "--no-figures") == 0
    assert "captured with random weights (weights = random): its statistics mean nothing" in capsys.readouterr().out


@pytest.mark.slow
def test_sd15_config_capture_two_steps_within_rss_bound(tmp_path):
    """The SD v1.5-config U-Net (random weights) through `difftlm trace capture`, 2 DDIM steps with
    guidance, streamed to disk: the op table is the zoo's (346 MAC ops, 401.6 GMAC per image) and
    the capture process stays under 16 GiB peak RSS (measured: 13.0 GB, 3.4 GB of it fp32 weights)."""
    import resource
    import subprocess
    import sys

    from workloads.zoo import zoo_ops

    out = tmp_path / "sd15.trace.zip"
    cmd = [sys.executable, "-m", "difftlm.cli", "trace", "capture", "--model", "sd15", "--steps", "2",
           "--batch", "1", "--no-int8-need", "--out", str(out)]
    subprocess.run(cmd, check=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    assert peak_gib < 16, peak_gib
    with Trace(out) as tr:
        assert tr.weights == "random" and tr.manifest["batch"] == 2 and tr.n_steps == 2
        mac = [o for o in tr.ops if o.is_mac]
        assert len(mac) == 346
        assert abs(sum(o.macs for o in mac) / 2 / 1e9 - 401.6) < 0.1
        zoo = zoo_ops("sd15")
        assert [(o.kind, o.macs, o.c, o.k) for o in tr.ops] == [(o.kind, o.macs, o.c, o.k) for o in zoo]
        st = tr.step(1)
        assert st.scalars["delta.zero_frac"] and st.arrays["mhd.l1_map"]
