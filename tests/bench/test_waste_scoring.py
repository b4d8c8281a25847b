"""bench/waste_city: the simulated city, the simulator and the scoring helpers of bench/waste.py (no timing)."""

from __future__ import annotations

import numpy as np
import pytest
from waste_city import (
    PATTERNS,
    Simulator,
    fixed_weekdays,
    gap_pct,
    interval_fills,
    make_city,
    overflow_bin_days,
    parse_bks,
)


def test_overflow_bin_days_counts_days_with_any_full_hour() -> None:
    levels = np.zeros((2, 72))
    levels[0, 5] = 1.0  # day 0
    levels[0, 30:40] = 1.2  # day 1, several hours: one bin-day
    levels[1, 71] = 0.999  # just under
    assert overflow_bin_days(levels) == 2


def test_gap_and_bks() -> None:
    assert parse_bks("Route #1: 1 2 3\nRoute #2: 4\nCost 27591\n") == 27591
    with pytest.raises(ValueError, match="Cost"):
        parse_bks("Route #1: 1\n")
    assert gap_pct(101.0, 100.0) == pytest.approx(1.0)


def test_fixed_patterns_and_the_fill_between_visits() -> None:
    for f, (_days, longest) in PATTERNS.items():
        for sector in range(6):
            w = fixed_weekdays(f, sector)
            assert len(w) == f and all(0 <= d <= 5 for d in w)
            gaps = [(w[(k + 1) % f] - w[k]) % 7 or 7 for k in range(f)]
            assert max(gaps) == longest and sum(gaps) == 7
    daily = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.2])
    # Monday and Thursday: Thursday's visit follows Tue-Thu (0.3), Monday's follows Fri-Mon (0.7)
    assert interval_fills(daily, [0, 3]) == [(0, pytest.approx(0.7)), (3, pytest.approx(0.3))]


def test_a_tiny_city_is_deterministic_and_a_bin_never_emptied_overflows_as_its_fill_says() -> None:
    a, b = make_city(n_bins=12, days=3, warmup_days=1, seed=1), make_city(n_bins=12, days=3, warmup_days=1, seed=1)
    assert [x.model_dump() for x in a.bins] == [x.model_dump() for x in b.bins]
    assert np.array_equal(a.inc, b.inc)
    assert a.inc.shape == (12, 4 * 24) and (a.inc >= 0).all()
    sim = Simulator(a)
    sim.warm_up()
    for _ in range(a.days):
        sim.run_day({})
    # nobody collects after the warm-up: the true level is the running sum of the fill
    expected = sim.levels[:, 23][:, None] + np.cumsum(a.inc[:, 24:], axis=1)
    assert sim.levels[:, 24:] == pytest.approx(expected)
    assert sim.overflow_bin_days() == int((expected.reshape(12, 3, 24) >= 1.0).any(axis=2).sum())
    # readings are missing exactly where the city drops them
    assert np.array_equal(np.isnan(sim.readings), ~a.seen)


def test_an_emptied_bin_restarts_from_zero_at_the_collection_hour() -> None:
    city = make_city(n_bins=3, days=1, warmup_days=0, seed=2)
    sim = Simulator(city)
    sim.run_day({10: [0]})
    assert sim.levels[0, 10] == pytest.approx(city.inc[0, :11].sum())  # the level before the emptying
    assert sim.levels[0, 11] == pytest.approx(city.inc[0, 11])
    assert sim.levels[1, 23] == pytest.approx(city.inc[1, :24].sum())
