"""The vectorised One-Euro filter equals the authors' package (OneEuroFilter), element by element."""
import numpy as np
import pytest

from pose_stream.tracking import SmoothingConfig
from pose_stream.tracking.one_euro import OneEuroFilter

reference = pytest.importorskip("OneEuroFilter", reason="the authors' OneEuroFilter package (test extra)")


@pytest.mark.parametrize("config", [SmoothingConfig(1.0, 0.0, 1.0), SmoothingConfig(0.5, 0.05, 1.0),
                                    SmoothingConfig(2.0, 0.7, 0.3)])
def test_equals_the_reference_package(config, rng):
    steps = 60
    times = np.cumsum(rng.uniform(0.02, 0.06, steps))   # irregular frame times
    signal = np.cumsum(rng.normal(0, 3, (steps, 3, 2)), axis=0) + rng.normal(0, 1, (steps, 3, 2))
    ours = OneEuroFilter(config, signal[0], times[0], period=0.04)
    theirs = [[reference.OneEuroFilter(25.0, config.min_cutoff, config.beta, config.d_cutoff) for _ in range(2)]
              for _ in range(3)]
    expected = np.array([[theirs[j][c](signal[0, j, c], times[0]) for c in range(2)] for j in range(3)])
    np.testing.assert_allclose(signal[0], expected)
    for t in range(1, steps):
        got = ours(signal[t], times[t])
        expected = np.array([[theirs[j][c](signal[t, j, c], times[t]) for c in range(2)] for j in range(3)])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


def test_still_signal_is_smoothed_and_a_step_is_followed(rng):
    config = SmoothingConfig(min_cutoff=1.0, beta=0.01)
    noise = rng.normal(0, 2, (200, 1))
    f = OneEuroFilter(config, 100 + noise[0], 0.0)
    out = np.array([f(100 + noise[t], t / 25) for t in range(1, 200)])
    assert out[50:].std() < 0.5 * noise[50:].std()
    for t in range(200, 215):  # a jump of 100 px: followed within a few frames thanks to beta
        value = f(np.array([200.0]), t / 25)
    assert abs(value[0] - 200) < 5


def test_repeated_timestamp_keeps_the_last_period():
    f = OneEuroFilter(SmoothingConfig(), np.zeros(2), 0.0, period=0.04)
    f(np.ones(2), 0.04)
    a = f(np.full(2, 2.0), 0.04)  # same time again: the previous period is used, no division by zero
    assert np.isfinite(a).all()


@pytest.mark.parametrize("kwargs", [{"min_cutoff": 0}, {"min_cutoff": -1}, {"beta": -0.1}, {"d_cutoff": 0},
                                    {"min_cutoff": float("nan")}, {"beta": float("inf")}])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        SmoothingConfig(**kwargs)
