"""Figures: drawn from result tables, non-trivial images, reproducible bytes."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

import difftlm
import plots


@pytest.fixture(scope="module")
def results(small_trace):
    return difftlm.compare(small_trace, ["dense"])


@pytest.mark.parametrize("kind", plots.KINDS)
def test_every_kind_draws_a_labelled_nonblank_png(results, kind, tmp_path):
    fig = plots.make(kind, results)
    ax = fig.axes[0]
    assert "(" in ax.get_ylabel() and ")" in ax.get_ylabel()            # units on the axis
    path = plots.save_figure(fig, tmp_path / f"{kind}.png")
    img = mpimg.imread(path)
    assert img.shape[0] > 100 and np.ptp(img[..., :3]) > 0.5


@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_saved_figures_are_reproducible(results, ext, tmp_path):
    a = plots.save_figure(plots.make("breakdown", results), tmp_path / f"a.{ext}")
    b = plots.save_figure(plots.make("breakdown", results), tmp_path / f"b.{ext}")
    assert open(a, "rb").read() == open(b, "rb").read()


def test_breakdown_heights_are_the_run_time(results):
    fig = plots.breakdown(results)
    ax = fig.axes[0]
    top = max(p.get_y() + p.get_height() for p in ax.patches)
    s = results["dense"].summary
    assert top == pytest.approx(s["total_cycles"] / (s["clock_mhz"] * 1e3))     # ms


def test_timeline_unknown_design(results):
    with pytest.raises(KeyError):
        plots.timeline(results, "nope")
