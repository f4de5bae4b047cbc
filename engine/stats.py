"""The statistics behind the satisfaction metrics: a value, its sample size and
its 95% interval.

The metrics module computes sums and counts in SQL and hands them to these
functions, so every function here takes aggregates (counts, a sum and a sum of
squares), never rows. Everything is pure Python on the standard library: no
database, no Flask, no numpy/scipy.

An :class:`Estimate` is honest about how much it knows: ``value`` is ``None``
when there is nothing to measure (never a division by zero), ``ci95`` is
``None`` when an interval cannot be computed, and ``small_sample`` flags a
sample smaller than the configured minimum (30 by default), so a dashboard can
grey out an NPS of 100 computed from two answers.

Why these intervals:

* **NPS** (:func:`nps`) is the difference of two proportions taken from the
  *same* answers (promoters minus detractors; passives count in the
  denominator only), so the two are negatively correlated. Its variance is the
  trinomial one, ``(pP + pD - (pP - pD)**2) / n``, not the sum of two binomial
  variances. The interval is the normal one, ``value +/- 1.96 * 100 * sqrt(Var)``,
  clipped to [-100, 100]. When every answer falls in one category the variance
  is zero and the interval collapses onto the value: that is arithmetic, not
  certainty, and ``small_sample`` is what warns about it.
* **Means** (:func:`mean`, e.g. a 1-5 rating) use the Student t distribution
  with n - 1 degrees of freedom: with the sample standard deviation estimated
  from a few answers, the normal 1.96 would give intervals that are too narrow
  (t(0.975, 4) = 2.78). With one answer there is no spread to estimate, and the
  interval is ``None``. The interval can be clipped to the scale's bounds.
* **Proportions and rates** (:func:`proportion`, :func:`rate`) use the Wilson
  score interval. The textbook normal (Wald) interval ``p +/- z sqrt(p(1-p)/n)``
  fails near 0% and 100%: at 10 out of 10 it has zero width, and near the ends
  it spills outside [0, 100] and covers the truth far less than 95% of the time.
  Wilson's interval stays inside [0, 100], is never empty at the ends (10/10
  gives about 72%-100%) and keeps close to its nominal coverage for small n.

:func:`t_quantile` computes Student t quantiles by inverting the t
distribution function, which is evaluated through the regularized incomplete
beta function (a Lentz continued fraction, as in Numerical Recipes' ``betacf``),
with a safeguarded Newton iteration; df = 1 and df = 2 have closed forms, and
very large df use the Cornish-Fisher expansion around the normal quantile.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

__all__ = ["Estimate", "Z95", "mean", "nps", "proportion", "rate", "t_quantile"]

#: The normal 0.975 quantile, for the Wilson interval.
Z95 = 1.959963984540054
#: The conventional rounded value the NPS interval is specified with.
NPS_Z = 1.96
#: The sample size below which an estimate is flagged ``small_sample``.
DEFAULT_MINIMUM = 30


@dataclass(frozen=True)
class Estimate:
    """A value with its sample size and 95% interval.

    ``value`` is ``None`` when ``n == 0``; ``ci95`` is ``None`` when no interval
    can be computed (``n == 0``, or ``n == 1`` for a mean). ``counts`` holds the
    component counts the value was computed from (read-only). ``small_sample`` is
    ``n < minimum``. Values keep full precision; :meth:`as_json` rounds.
    """

    value: float | None
    n: int
    ci95: tuple[float, float] | None
    counts: Mapping[str, int] = field(hash=False)
    small_sample: bool

    def __post_init__(self) -> None:
        # A frozen estimate should not have counts that change under it.
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    def as_json(self) -> dict[str, Any]:
        """The JSON shape, with floats rounded to 4 decimals."""
        return {
            "value": None if self.value is None else round(self.value, 4),
            "n": self.n,
            "ci95": None if self.ci95 is None
            else [round(self.ci95[0], 4), round(self.ci95[1], 4)],
            "counts": dict(self.counts),
            "small_sample": self.small_sample,
        }


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _clip(low: float, high: float, lo: float, hi: float) -> tuple[float, float]:
    """Clip an interval into [lo, hi], keeping low <= high."""
    return min(max(low, lo), hi), max(min(high, hi), lo)


def nps(promoters: int, passives: int, detractors: int, *,
        minimum: int = DEFAULT_MINIMUM) -> Estimate:
    """Net Promoter Score, 100 * (pP - pD), with its trinomial-variance 95% interval.

    ``Var = (pP + pD - (pP - pD)**2) / n``; the interval is
    ``value +/- 1.96 * 100 * sqrt(Var)`` clipped to [-100, 100].
    """
    _check_count("promoters", promoters)
    _check_count("passives", passives)
    _check_count("detractors", detractors)
    n = promoters + passives + detractors
    counts = {"promoters": promoters, "passives": passives, "detractors": detractors}
    if n == 0:
        return Estimate(None, 0, None, counts, 0 < minimum)
    p_p = promoters / n
    p_d = detractors / n
    diff = p_p - p_d
    value = 100.0 * diff
    # Rounding can leave a zero variance (all answers in one category) a hair below 0.
    var = max(0.0, (p_p + p_d - diff * diff) / n)
    half = NPS_Z * 100.0 * math.sqrt(var)
    low, high = _clip(value - half, value + half, -100.0, 100.0)
    return Estimate(value, n, (low, high), counts, n < minimum)


def mean(n: int, total: float, total_sq: float, *, minimum: int = DEFAULT_MINIMUM,
         bounds: tuple[float, float] | None = None) -> Estimate:
    """The mean of ``n`` values from their sum and sum of squares, with a Student-t
    95% interval (n - 1 degrees of freedom), clipped to ``bounds`` when given
    (e.g. ``(1, 5)`` for a 1-5 rating).

    The variance is ``(total_sq - total**2 / n) / (n - 1)``: fine for ratings on a
    small scale; sums of large values with a small spread lose precision to
    cancellation (a tiny negative result is taken as 0). With ``n == 1`` there is
    no spread to estimate and ``ci95`` is ``None``.
    """
    _check_count("n", n)
    if not (math.isfinite(total) and math.isfinite(total_sq)):
        raise ValueError("total and total_sq must be finite")
    if bounds is not None and bounds[0] > bounds[1]:
        raise ValueError(f"bounds must be (low, high) with low <= high, got {bounds}")
    counts = {"n": n}
    if n == 0:
        return Estimate(None, 0, None, counts, 0 < minimum)
    value = total / n
    if n == 1:
        return Estimate(value, 1, None, counts, 1 < minimum)
    var = max(0.0, (total_sq - total * total / n) / (n - 1))
    half = t_quantile(0.975, n - 1) * math.sqrt(var / n)
    low, high = value - half, value + half
    if bounds is not None:
        low, high = _clip(low, high, float(bounds[0]), float(bounds[1]))
    return Estimate(value, n, (low, high), counts, n < minimum)


def proportion(k: int, n: int, *, minimum: int = DEFAULT_MINIMUM,
               label: str = "yes") -> Estimate:
    """The percentage 100 * k / n with a Wilson score 95% interval, in percent.

    ``counts`` is ``{label: k, "total": n}``.
    """
    _check_count("k", k)
    _check_count("n", n)
    if k > n:
        raise ValueError(f"k must be <= n, got k={k}, n={n}")
    if label == "total":
        raise ValueError('label cannot be "total"')
    counts = {label: k, "total": n}
    if n == 0:
        return Estimate(None, 0, None, counts, 0 < minimum)
    p = k / n
    value = 100.0 * p
    z2 = Z95 * Z95
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom
    low, high = _clip(100.0 * (centre - half), 100.0 * (centre + half), 0.0, 100.0)
    # Mathematically the Wilson interval contains k/n (its ends are exactly 0 at
    # k = 0 and 100 at k = n); keep rounding from breaking that.
    low, high = min(low, value), max(high, value)
    return Estimate(value, n, (low, high), counts, n < minimum)


def rate(k: int, n: int, *, minimum: int = DEFAULT_MINIMUM, label: str = "yes") -> Estimate:
    """An operational rate in percent (reopen rate, SLA compliance, response rate):
    ``k`` of ``n`` cases, with the Wilson score 95% interval.

    The same computation as :func:`proportion`; this is the name the metrics use
    for rates of cases, as opposed to shares of survey answers.
    """
    return proportion(k, n, minimum=minimum, label=label)


# --- Student t quantiles ----------------------------------------------------------

_CF_EPS = 1e-16
_CF_TINY = 1e-300
_CF_MAXIT = 20000
# Above this many degrees of freedom the Cornish-Fisher series (terms to 1/df**4) is
# used: at df = 200 it agrees with the beta inversion to about 1e-12 relative at
# p = 0.975, it is more accurate as df grows (the incomplete beta's log-gamma
# differences lose digits), and it costs microseconds instead of milliseconds (the
# continued fraction needs about sqrt(df) terms, each Newton step one of them): the
# dashboard asks for several intervals per request.
_CORNISH_FISHER_DF = 200


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz),
    converging fast for x < (a + 1) / (a + b + 2)."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _CF_TINY:
        d = _CF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _CF_TINY:
            d = _CF_TINY
        c = 1.0 + aa / c
        if abs(c) < _CF_TINY:
            c = _CF_TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _CF_TINY:
            d = _CF_TINY
        c = 1.0 + aa / c
        if abs(c) < _CF_TINY:
            c = _CF_TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b})")


def _betai(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function I_x(a, b), with y = 1 - x passed
    separately so that neither side loses precision to a subtraction."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    log_front = (a * log_x + b * log_y
                 + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, y) / b


def _t_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0: I_{df/(df+t^2)}(df/2, 1/2) / 2."""
    t2 = t * t
    return 0.5 * _betai(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))


def _t_centre(t: float, df: float) -> float:
    """P(-t < T < t) for t >= 0: I_{t^2/(df+t^2)}(1/2, df/2)."""
    t2 = t * t
    return _betai(0.5, 0.5 * df, t2 / (df + t2), df / (df + t2))


def _t_log_pdf(t: float, df: float) -> float:
    return (math.lgamma(0.5 * (df + 1)) - math.lgamma(0.5 * df)
            - 0.5 * math.log(df * math.pi) - 0.5 * (df + 1) * math.log1p(t * t / df))


def _cornish_fisher(z: float, df: float) -> float:
    """The t quantile from the normal quantile z (Abramowitz & Stegun 26.7.5)."""
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def _t_upper(q: float, df: int) -> float:
    """The t > 0 with P(T > t) = q, for 0 < q < 1/2."""
    if df == 1:
        # tan(pi * (p - 1/2)) = cot(pi * q), computed from q to keep precision near p = 1.
        return 1.0 / math.tan(math.pi * q)
    if df == 2:
        return (1.0 - 2.0 * q) / math.sqrt(2.0 * q * (1.0 - q))
    guess = _cornish_fisher(-NormalDist().inv_cdf(q), df)
    if df > _CORNISH_FISHER_DF:
        return guess

    # Solve on the central probability near the middle (where it is exact:
    # 1 - 2q has no rounding for q > 1/4), on the log of the tail otherwise
    # (a power law in t, on which Newton behaves).
    use_centre = q > 0.25
    if use_centre:
        target = 1.0 - 2.0 * q

        def f(t: float) -> float:
            return _t_centre(t, df) - target

        def step(t: float, ft: float) -> float:
            return ft / (2.0 * math.exp(_t_log_pdf(t, df)))
    else:
        log_q = math.log(q)

        def f(t: float) -> float:
            tail = _t_tail(t, df)
            return log_q - math.log(tail) if tail > 0.0 else math.inf

        def step(t: float, ft: float) -> float:
            # f'(t) = pdf / tail; both can underflow far out, their ratio does not.
            tail = _t_tail(t, df)
            if tail <= 0.0:
                return math.inf  # out of the bracket: bisect
            return ft * math.exp(math.log(tail) - _t_log_pdf(t, df))

    # Both f are increasing in t; bracket the root in [lo, hi].
    lo, hi = 0.0, max(guess, 1.0)
    while f(hi) < 0.0:
        lo, hi = hi, 2.0 * hi
    t = guess if lo < guess < hi else 0.5 * (lo + hi)
    for _ in range(200):
        ft = f(t)
        if ft == 0.0:
            return t
        if ft < 0.0:
            lo = t
        else:
            hi = t
        new = t - step(t, ft)
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - t) <= 4e-16 * abs(t) or hi - lo <= 4e-16 * hi:
            return new
        t = new
    return t


@functools.lru_cache(maxsize=4096)  # a dashboard asks for the same n again and again
def t_quantile(p: float, df: int) -> float:
    """The quantile of Student's t distribution with ``df`` degrees of freedom:
    the t with P(T <= t) = p, for 0 < p < 1 and df >= 1.

    Accurate to about 1e-11 relative or better (far beyond the 1e-6 the
    intervals need). df = 1 (Cauchy) and df = 2 use closed forms; df > 200 the
    Cornish-Fisher expansion; otherwise the t distribution function, evaluated
    through the regularized incomplete beta function, is inverted by a Newton
    iteration kept inside a bisection bracket.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if p == 0.5:
        return 0.0
    # Both are exact: 1 - p for p in [1/2, 1) (Sterbenz), and p itself below 1/2.
    if p > 0.5:
        return _t_upper(1.0 - p, df)
    return -_t_upper(p, df)
