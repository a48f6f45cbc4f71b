"""Tiny DDPM: architecture, committed checkpoints, deterministic DDIM, hooks, sample quality."""

import json

import pytest
import torch
from torch import nn

from workloads.tiny.model import (
    MODEL_NAMES, MatmulPV, MatmulQK, TinyUNet, checkpoint_path, ddim_sample, ddim_timesteps,
    load_tiny, param_count,
)
from workloads.tiny.quality import (
    confidence, digit_classifier, noise_images, random_init_model, swapped_relu,
)

torch.set_num_threads(1)
N, STEPS = 64, 25


@pytest.mark.parametrize("act", ["silu", "relu"])
def test_param_count_and_activation_modules(act):
    m = TinyUNet(act=act)
    assert 200_000 <= param_count(m) <= 320_000
    kinds = {type(x) for x in m.modules()}
    assert (nn.SiLU in kinds) == (act == "silu") and (nn.ReLU in kinds) == (act == "relu")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_checkpoint_small_and_sidecar_consistent(name):
    path = checkpoint_path(name)
    assert path.stat().st_size <= 2 * 1024 * 1024
    info = json.loads(path.with_suffix(".json").read_text())
    model = load_tiny(name)
    assert not model.training
    assert info["params"] == param_count(model)
    assert info["act"] == name.split("-")[1] == model.act_name
    assert info["iters_done"] == info["iters_planned"]


def test_load_unknown_name_rejected():
    with pytest.raises(ValueError):
        load_tiny("tiny-gelu")


def test_ddim_deterministic_and_callback_follows_steps():
    m = load_tiny("tiny-silu")
    seen = []
    a = ddim_sample(m, 4, 10, seed=3, callback=lambda i, t, x: seen.append((i, t, x.shape)))
    b = ddim_sample(m, 4, 10, seed=3)
    c = ddim_sample(m, 4, 10, seed=4)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert [s[0] for s in seen] == list(range(10))
    assert [s[1] for s in seen] == ddim_timesteps(10)
    assert seen[0][1] == 999 and seen[-1][1] == 0
    assert all(s[2] == (4, 1, 16, 16) for s in seen)


def test_attention_matmuls_and_softmax_fire_hooks():
    m = load_tiny("tiny-relu")
    calls = []
    for mod in m.modules():
        if isinstance(mod, (MatmulQK, MatmulPV, nn.Softmax)):
            mod.register_forward_hook(
                lambda mod, inp, out: calls.append((type(mod), [i.shape for i in inp], out.shape)))
    ddim_sample(m, 2, 3, seed=0)
    assert len(calls) == 3 * 3
    qk = [c for c in calls if c[0] is MatmulQK]
    pv = [c for c in calls if c[0] is MatmulPV]
    assert qk[0][1] == [(2, 4, 64, 8), (2, 4, 64, 8)] and qk[0][2] == (2, 4, 64, 64)
    assert pv[0][1] == [(2, 4, 64, 64), (2, 4, 64, 8)] and pv[0][2] == (2, 4, 64, 8)


def _frac(model):
    return confidence(ddim_sample(model, N, STEPS, seed=0))["confident_fraction"]


@pytest.fixture(scope="module")
def baselines():
    out = {"noise": confidence(noise_images(N, seed=0))["confident_fraction"]}
    for act in ("silu", "relu"):
        out[f"random-init-{act}"] = _frac(random_init_model(act))
    return out


def test_classifier_is_accurate():
    assert digit_classifier()[1] >= 0.9


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_trained_samples_look_like_digits(name, baselines):
    q = confidence(ddim_sample(load_tiny(name), N, STEPS, seed=0))
    frac = q["confident_fraction"]
    assert frac >= 0.3
    assert frac >= baselines[f"random-init-{name.split('-')[1]}"] + 0.2
    assert frac >= baselines["noise"] + 0.25
    # not collapsed onto one or two digits
    assert sum(1 for c in q["confident_class_counts"] if c > 0) >= 5


def test_silu_to_relu_swap_without_retraining_breaks_samples():
    assert _frac(swapped_relu("tiny-silu")) <= _frac(load_tiny("tiny-silu")) - 0.2
