"""Slow: the fast path against its exact twin on Stable Diffusion v1.5 (zoo trace).

The exact run of a whole SD step takes minutes per design (tens of minutes for SQ-DM and
Cambricon-D), so the test replays the first `N_OPS` ops of the U-Net (conv_in, the time
embedding, the first two resnets and the first transformer block at 64 × 64 = 4,096 tokens,
with its self- and cross-attention) for three steps, on every design.
"""

import pytest

import difftlm
from workloads.trace import StepStats, Trace, write_trace

pytestmark = pytest.mark.slow
N_OPS = 60
STEPS = 3


@pytest.fixture(scope="module")
def sd_slice(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from workloads.zoo import write_zoo_trace

    d = tmp_path_factory.mktemp("sd")
    full = d / "sd15.trace.zip"
    write_zoo_trace("sd15", full, steps=STEPS)
    out = d / "sd15-head.trace.zip"
    with Trace(full) as tr:
        ops = tr.ops[:N_OPS]
        steps = [StepStats({k: {i: v for i, v in s.items() if i < N_OPS} for k, s in st.scalars.items()},
                           {k: {i: v for i, v in s.items() if i < N_OPS} for k, s in st.arrays.items()})
                 for st in (tr.step(i) for i in range(tr.n_steps))]
        manifest = {k: v for k, v in tr.manifest.items() if k not in ("schema", "version")}
        write_trace(out, manifest, ops, steps)
    return str(out)


DITTO_GAP = ("known gap of A-40: on this slice Ditto's fast total is 1.06 % below exact (compute "
             "-1.7 %): inside a macro job the output-buffer gating of its per-tile write-backs "
             "(prev_out/keep_out, 35 KB per tile) is not modelled")


@pytest.mark.parametrize("design", ["dense", pytest.param("ditto", marks=pytest.mark.xfail(reason=DITTO_GAP)),
                                    "mhdiff", "sqdm", "cambricon_d"])
def test_fast_matches_exact_on_sd15(sd_slice, design):
    exact = difftlm.replay(sd_slice, design, exact=True).summary
    fast = difftlm.replay(sd_slice, design).summary
    print(design, {k: (exact[k], fast[k]) for k in ("total_cycles", "simulated_jobs")})
    assert fast["tile_jobs"] == exact["tile_jobs"]
    for key, tol in (("total_cycles", 0.01), ("compute_cycles", 0.02), ("memory_cycles", 0.02),
                     ("overlap_cycles", 0.02), ("energy_total_pj", 0.01)):
        assert fast[key] == pytest.approx(exact[key], rel=tol), (key, fast[key], exact[key])
