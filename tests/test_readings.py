"""The reading guards: per-seed statistics and the check that fails a build when prose and numbers disagree."""
import math

import pytest

import attention_lib as al
from attention_lib.toolkit import readings as rd


def test_seeds_uses_the_sample_standard_deviation():
    s = rd.seeds([0.5, 0.7, 0.9])
    assert s.n == 3
    assert s.mean == pytest.approx(0.7)
    assert s.sd == pytest.approx(0.2)                # sqrt(((-.2)^2 + 0 + .2^2) / (3 - 1))
    assert (s.low, s.high) == (0.5, 0.9)
    assert rd.seeds([0.3]).sd == 0.0


def test_paired_differences_carry_the_per_seed_sign():
    change = rd.paired([0.80, 0.75, 0.70], [0.74, 0.77, 0.60])
    assert change.values == pytest.approx((0.06, -0.02, 0.10))
    assert (change.positive, change.negative) == (2, 1)
    assert change.count(lambda v: v > 0.05) == 2
    # the spread of the change is far smaller than the spread of either level when seeds shift both alike
    levels = [0.5, 0.7, 0.9]
    assert rd.paired([v + 0.03 for v in levels], levels).sd == pytest.approx(0.0, abs=1e-12)


def test_format_shows_mean_spread_and_every_seed():
    assert rd.seeds([0.636, 0.641, 0.644]).format() == "0.640 ± 0.004 (0.636, 0.641, 0.644)"
    assert rd.paired([1.0, 1.0], [0.9, 1.1]).format(2, signed=True) == "+0.00 ± 0.14 (+0.10, -0.10)"


def test_expect_passes_silently_and_fails_with_the_sentence_and_numbers():
    rd.reset()
    rd.expect("SE learns the switch in every seed", True, found=5)
    with pytest.raises(rd.ReadingError, match=r"SE learns the switch in every seed.*found = 4"):
        rd.expect("SE learns the switch in every seed", 4 == 5, found=4)
    assert [c for c, _ in rd.checked()] == ["SE learns the switch in every seed"] * 2
    assert isinstance(rd.ReadingError("x"), AssertionError)     # a failing cell, whatever catches what


@pytest.mark.parametrize("bad", [[], ["a"], None])
def test_bad_per_seed_values_are_a_value_error(bad):
    with pytest.raises(ValueError, match="one per seed"):
        rd.seeds(bad)


def test_paired_needs_the_same_seeds():
    with pytest.raises(ValueError, match="got 3 and 2"):
        rd.paired([1, 2, 3], [1, 2])


def test_expect_needs_a_sentence():
    with pytest.raises(ValueError, match="sentence"):
        rd.expect("  ", True)


def test_clearly_less_needs_the_margin():
    assert rd.clearly_less(1.0, 1.5) and not rd.clearly_less(1.0, 1.4)
    assert rd.clearly_less(1.0, 1.2, factor=1.2)
    with pytest.raises(ValueError):
        rd.clearly_less(1.0, 2.0, factor=0.5)


def test_readings_reachable_from_the_package():
    assert al.readings is rd
    assert math.isnan(rd.seeds([float("nan")]).mean)
