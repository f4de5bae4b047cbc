"""Tests for caseloop.stats: hand-computed fixtures, and every interval checked
against an independent computation written here (never the module's helpers)."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseloop.stats import Estimate, mean, nps, proportion, rate, t_quantile

Z = 1.959963984540054  # the normal 0.975 quantile, for the Wilson checks

# Published two-sided 95% critical values, t(0.975, df), to 6 decimals.
T_TABLE_975 = {
    1: 12.706205,
    2: 4.302653,
    4: 2.776445,
    5: 2.570582,
    10: 2.228139,
    30: 2.042272,
    100: 1.983972,
}


# --- independent references -------------------------------------------------------

def t_density(x: float, df: int) -> float:
    """Student's t density, written out from its definition."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def t_cdf_simpson(t: float, df: int, intervals: int = 20_000) -> float:
    """P(T <= t) for t >= 0: 1/2 plus Simpson's rule on the density over [0, t]."""
    h = t / intervals
    acc = t_density(0.0, df) + t_density(t, df)
    for i in range(1, intervals):
        acc += (4 if i % 2 else 2) * t_density(i * h, df)
    return 0.5 + acc * h / 3


def wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """Wilson's interval as the roots in p of (k/n - p)^2 = z^2 p (1 - p) / n, in percent."""
    ph = k / n
    a = 1 + Z * Z / n
    b = -(2 * ph + Z * Z / n)
    c = ph * ph
    disc = math.sqrt(max(0.0, b * b - 4 * a * c))
    return 100 * (-b - disc) / (2 * a), 100 * (-b + disc) / (2 * a)


# --- NPS --------------------------------------------------------------------------

def test_nps_ten_answers() -> None:
    est = nps(5, 3, 2)
    assert est.value == pytest.approx(30.0, abs=1e-12)
    assert est.n == 10
    # pP = 0.5, pD = 0.2: Var = (0.5 + 0.2 - 0.3**2) / 10 = 0.061
    half = 1.96 * 100 * math.sqrt(0.061)
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(30 - half, abs=1e-9)
    assert est.ci95[1] == pytest.approx(30 + half, abs=1e-9)
    assert dict(est.counts) == {"promoters": 5, "passives": 3, "detractors": 2}
    assert est.small_sample is True  # 10 < 30, the default minimum
    assert nps(5, 3, 2, minimum=10).small_sample is False  # 10 is not < 10


def test_nps_interval_is_clipped_to_the_scale() -> None:
    # 9 promoters, 1 detractor: 80 +/- 1.96 * 100 * sqrt((1 - 0.64) / 10) = 80 +/- 37.2
    est = nps(9, 0, 1)
    assert est.value == pytest.approx(80.0)
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(80 - 1.96 * 100 * math.sqrt(0.036), abs=1e-9)
    assert est.ci95[1] == 100.0


def test_empty_inputs_give_no_value_and_no_interval() -> None:
    for est in (nps(0, 0, 0), mean(0, 0, 0), proportion(0, 0), rate(0, 0)):
        assert est.value is None
        assert est.n == 0
        assert est.ci95 is None
        assert est.small_sample is True
    assert dict(nps(0, 0, 0).counts) == {"promoters": 0, "passives": 0, "detractors": 0}
    assert dict(mean(0, 0, 0).counts) == {"n": 0}
    assert dict(proportion(0, 0).counts) == {"yes": 0, "total": 0}


def test_nps_single_answer() -> None:
    est = nps(1, 0, 0)
    assert est.value == 100.0
    # One answer has zero sample variance (pP = 1: Var = (1 - 1) / 1 = 0), so the
    # interval collapses onto the value: arithmetic, not certainty; small_sample says so.
    assert est.ci95 == (100.0, 100.0)
    assert est.small_sample is True


def test_nps_all_promoters_and_all_detractors() -> None:
    top = nps(50, 0, 0)
    assert top.value == 100.0
    assert top.ci95 == (100.0, 100.0)
    assert top.small_sample is False
    bottom = nps(0, 0, 50)
    assert bottom.value == -100.0
    assert bottom.ci95 == (-100.0, -100.0)
    only_passives = nps(0, 7, 0)
    assert only_passives.value == 0.0
    assert only_passives.ci95 == (0.0, 0.0)


def test_nps_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        nps(-1, 2, 3)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300), st.integers(0, 300))
def test_nps_property(promoters: int, passives: int, detractors: int) -> None:
    est = nps(promoters, passives, detractors)
    n = promoters + passives + detractors
    assert est.n == n
    if n == 0:
        assert est.value is None and est.ci95 is None
        return
    assert est.value is not None and est.ci95 is not None
    low, high = est.ci95
    assert -100 <= low <= est.value <= high <= 100
    # Independently: NPS is the mean of per-answer scores +100 / 0 / -100, and the
    # trinomial variance is their population variance divided by n.
    scores = [100.0] * promoters + [0.0] * passives + [-100.0] * detractors
    value = statistics.fmean(scores)
    half = 1.96 * math.sqrt(statistics.pvariance(scores) / n)
    assert est.value == pytest.approx(value, abs=1e-9)
    assert low == pytest.approx(max(-100.0, value - half), abs=1e-7)
    assert high == pytest.approx(min(100.0, value + half), abs=1e-7)


# --- t quantiles ------------------------------------------------------------------

@pytest.mark.parametrize(("df", "expected"), sorted(T_TABLE_975.items()))
def test_t_quantile_matches_published_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("p", [0.55, 0.75, 0.9, 0.975, 0.995, 0.9999])
def test_t_quantile_df1_is_the_cauchy_quantile(p: float) -> None:
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 30, 100])
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_integrates_back_to_p(df: int, p: float) -> None:
    t = t_quantile(p, df)
    assert t > 0
    assert t_cdf_simpson(t, df) == pytest.approx(p, abs=1e-6)


def test_t_quantile_large_df_approaches_normal() -> None:
    assert t_quantile(0.975, 1_000) == pytest.approx(1.962339, abs=1e-6)  # table value
    assert t_quantile(0.975, 1_000_000) == pytest.approx(1.959964, abs=1e-5)
    assert t_quantile(0.975, 10**9) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.975, 10**12) == pytest.approx(Z, abs=1e-9)


def test_t_quantile_is_decreasing_in_df_across_methods() -> None:
    # Closed forms (1, 2), the incomplete beta inversion, and the large-df series.
    dfs = [1, 2, 3, 4, 10, 100, 1_000, 9_999, 10_000, 10_001, 100_000, 10**7]
    values = [t_quantile(0.975, df) for df in dfs]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] > Z


def test_t_quantile_extreme_tail_and_symmetry() -> None:
    p = 1 - 1e-10
    for df in (3, 7, 40):
        t = t_quantile(p, df)
        assert math.isfinite(t) and t > 0
        assert t_quantile(1 - p, df) == pytest.approx(-t, rel=1e-9)
    assert t_quantile(0.5, 5) == 0.0


def test_t_quantile_rejects_bad_arguments() -> None:
    for p in (0.0, 1.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError):
            t_quantile(p, 5)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


# --- means ------------------------------------------------------------------------

def test_mean_of_five_ratings() -> None:
    ratings = [4, 5, 3, 5, 4]
    est = mean(len(ratings), sum(ratings), sum(r * r for r in ratings))
    assert est.value == pytest.approx(4.2)
    assert est.n == 5
    assert dict(est.counts) == {"n": 5}
    # s^2 = (91 - 21^2 / 5) / 4 = 0.7; t(0.975, 4) = 2.776445 from the table.
    assert statistics.variance(ratings) == pytest.approx(0.7)
    half = 2.776445 * math.sqrt(0.7) / math.sqrt(5)
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(4.2 - half, abs=1e-6)
    assert est.ci95[1] == pytest.approx(4.2 + half, abs=1e-6)
    assert est.small_sample is True


def test_mean_single_answer_has_no_interval() -> None:
    est = mean(1, 4, 16)
    assert est.value == 4.0
    assert est.ci95 is None  # n - 1 = 0 degrees of freedom: no spread to estimate
    assert est.n == 1


def test_mean_clipped_to_bounds() -> None:
    ratings = [5, 5, 5, 4]
    # mean 4.75, s^2 = 0.25, half = 3.182446 * 0.5 / 2 = 0.7956: the top is clipped at 5
    est = mean(4, sum(ratings), sum(r * r for r in ratings), bounds=(1, 5))
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(4.75 - 3.182446 * 0.25, abs=1e-6)
    assert est.ci95[1] == 5.0
    unclipped = mean(4, sum(ratings), sum(r * r for r in ratings))
    assert unclipped.ci95 is not None
    assert unclipped.ci95[1] == pytest.approx(4.75 + 3.182446 * 0.25, abs=1e-6)


def test_mean_identical_values_and_rounding_guard() -> None:
    # Zero variance; 0.1 * 3 sums make total_sq - total^2 / n a hair negative in floats.
    est = mean(3, 0.1 + 0.1 + 0.1, 0.01 + 0.01 + 0.01)
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(0.1) and est.ci95[1] == pytest.approx(0.1)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=200))
def test_mean_property(ratings: list[int]) -> None:
    n = len(ratings)
    total, total_sq = float(sum(ratings)), float(sum(r * r for r in ratings))
    est = mean(n, total, total_sq, bounds=(1, 5))
    assert est.value == pytest.approx(statistics.fmean(ratings))
    assert est.ci95 is not None
    low, high = est.ci95
    assert 1 <= low <= est.value <= high <= 5
    # Unclipped, the half-width is t * s / sqrt(n): the implied t must put 97.5% of
    # the t(n - 1) distribution below it (the density integrated here).
    s = statistics.stdev(ratings)
    raw = mean(n, total, total_sq)
    assert raw.value is not None and raw.ci95 is not None
    assert raw.value - raw.ci95[0] == pytest.approx(raw.ci95[1] - raw.value, abs=1e-9)
    if s > 0:
        t = (raw.ci95[1] - raw.value) / (s / math.sqrt(n))
        assert t_cdf_simpson(t, n - 1, intervals=2_000) == pytest.approx(0.975, abs=1e-6)
    else:
        assert raw.ci95 == (raw.value, raw.value)


def test_mean_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        mean(-1, 0, 0)
    with pytest.raises(ValueError):
        mean(2, math.inf, 1)
    with pytest.raises(ValueError):
        mean(2, 2, 2, bounds=(5, 1))


# --- proportions (Wilson) ---------------------------------------------------------

def test_wilson_eight_of_ten() -> None:
    est = proportion(8, 10)
    assert est.value == pytest.approx(80.0)
    # Closed form: (p + z^2/2n +/- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    p, n, z2 = 0.8, 10, Z * Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    assert est.ci95 is not None
    assert est.ci95[0] == pytest.approx(100 * (centre - half), abs=1e-9)
    assert est.ci95[1] == pytest.approx(100 * (centre + half), abs=1e-9)
    # ... which is also the pair of roots of the score equation, and the familiar 49-94%.
    low, high = wilson_by_quadratic(8, 10)
    assert est.ci95[0] == pytest.approx(low, abs=1e-9)
    assert est.ci95[1] == pytest.approx(high, abs=1e-9)
    assert round(est.ci95[0], 1) == 49.0 and round(est.ci95[1], 1) == 94.3
    assert dict(est.counts) == {"yes": 8, "total": 10}


def test_wilson_edges_stay_inside_0_100() -> None:
    none = proportion(0, 10)
    assert none.value == 0.0
    assert none.ci95 is not None
    assert none.ci95[0] == 0.0
    # At k = 0 the upper end is z^2 / (n + z^2).
    assert none.ci95[1] == pytest.approx(100 * Z * Z / (10 + Z * Z), abs=1e-9)
    every = proportion(10, 10)
    assert every.value == 100.0
    assert every.ci95 is not None
    assert every.ci95[1] == 100.0
    assert every.ci95[0] == pytest.approx(100 * 10 / (10 + Z * Z), abs=1e-9)
    one = proportion(1, 1)
    assert one.ci95 is not None
    assert 0 < one.ci95[0] < one.ci95[1] == 100.0  # not the Wald interval's (100, 100)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_property(kn: tuple[int, int]) -> None:
    k, n = kn
    est = proportion(k, n)
    if n == 0:
        assert est.value is None and est.ci95 is None
        return
    assert est.value is not None and est.ci95 is not None
    low, high = est.ci95
    assert 0 <= low <= est.value <= high <= 100
    ref_low, ref_high = wilson_by_quadratic(k, n)
    assert low == pytest.approx(ref_low, abs=1e-6)
    assert high == pytest.approx(ref_high, abs=1e-6)


def test_rate_is_proportion_with_its_label() -> None:
    est = rate(3, 40, label="reopened")
    assert est == proportion(3, 40, label="reopened")
    assert dict(est.counts) == {"reopened": 3, "total": 40}
    assert est.small_sample is False


def test_proportion_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        proportion(3, 2)
    with pytest.raises(ValueError):
        proportion(-1, 2)
    with pytest.raises(ValueError):
        proportion(1, 2, label="total")


# --- Estimate ---------------------------------------------------------------------

def test_as_json_shape_and_rounding() -> None:
    est = nps(5, 3, 2)
    out = est.as_json()
    assert set(out) == {"value", "n", "ci95", "counts", "small_sample"}
    half = 1.96 * 100 * math.sqrt(0.061)
    assert out["value"] == 30.0
    assert out["n"] == 10
    assert out["ci95"] == [round(30 - half, 4), round(30 + half, 4)]
    assert out["ci95"] == [-18.4084, 78.4084]  # 196 * sqrt(0.061) = 48.40843...
    assert out["counts"] == {"promoters": 5, "passives": 3, "detractors": 2}
    assert out["small_sample"] is True
    # Full precision stays on the estimate; only the JSON is rounded.
    assert est.ci95 is not None and est.ci95[0] != out["ci95"][0]
    assert json.loads(json.dumps(out)) == out

    assert proportion(1, 3).as_json()["value"] == 33.3333
    empty = nps(0, 0, 0).as_json()
    assert empty == {"value": None, "n": 0, "ci95": None,
                     "counts": {"promoters": 0, "passives": 0, "detractors": 0},
                     "small_sample": True}
    assert mean(1, 4, 16).as_json()["ci95"] is None


def test_estimate_is_frozen_and_hashable() -> None:
    est = proportion(8, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.value = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        est.counts["yes"] = 9  # type: ignore[index]
    assert hash(est) == hash(proportion(8, 10))
    assert isinstance(est, Estimate)
