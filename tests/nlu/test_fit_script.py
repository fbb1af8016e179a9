"""scripts/fit_nlu.py's choice of the band where a configured chat model decides."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from fit_nlu import unsure_band  # noqa: E402


def test_the_bin_the_threshold_opens_is_the_bands_home_even_when_the_division_rounds_down() -> None:
    """0.55 / 0.05 is 10.999... in floating point: the home bin is [0.55, 0.60), not [0.50, 0.55)."""
    p = np.array([0.52] * 10 + [0.57] * 10 + [0.62] * 10 + [0.9] * 10)
    y = np.array([0] * 10 + [1, 0] * 5 + [0] * 10 + [1] * 10)  # right, coin flips, wrong, right
    assert unsure_band(p, y, 0.55) == (0.55, 0.65)
    assert unsure_band(p[p != 0.57], y[p != 0.57], 0.55) == (0.55, 0.55)  # a sure home bin: no band
