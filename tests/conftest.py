import pytest

from workloads.synthetic import UNetShape, write_synthetic_trace


@pytest.fixture(scope="session")
def small_trace(tmp_path_factory):
    """A 3-step synthetic trace of the tiny U-Net shape (synthetic statistics)."""
    path = tmp_path_factory.mktemp("traces") / "small.trace.zip"
    write_synthetic_trace(path, UNetShape(), steps=3, seed=1)
    return str(path)
