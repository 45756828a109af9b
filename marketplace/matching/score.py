"""The ranking score, 0 to 100: its weights, each term once, the exact score and its bounds.

  40 x fit          1.0 when the specialty is core to the practitioner's profession (the
                    vocabulary says which profession each specialty is core to), else 0.6
  30 x proximity    1 / (1 + distance / 10 km) for home visits, in absolute km whatever the
                    practitioner's travel radius: 1 on the doorstep, 1/2 at 10 km, 1/3 at 20 km,
                    1/9 at 80 km (the largest radius), strictly falling all the way, so a nearer
                    practitioner always scores higher on it; 1 for everyone on video
  20 x soonness     1 - whole days from the window's first day to the first free slot, over the
                    window's length in days
  10 x continuity   1 when the patient has had a visit with this practitioner before, else 0

Scores are compared in ten-thousandths of a point (`rank_key`).

The exact score needs the practitioner's diary (for soonness). Matching avoids reading diaries by
ranking candidates on a bound first, the best score each could reach, and two places compute one:
the database, for every candidate (`bound_key_sql`: proximity from a distance shrunk below the
true one, soonness from the first day the practitioner's hours could hold the visit), and Python,
for a tier of video candidates who share a profession and that first day (`rank_key` of `score`
with those optimistic terms). All three are the same weighted sum (`_weighted`) of the same
`Terms`, whose values come from the functions below, so they cannot drift apart.

To change the score (say, to rank on rating, which is shown but not ranked on today):
1. add the term to `Terms` and its weight to `WEIGHTS` (the weights add up to 100);
2. write its value once, as a function here that takes plain values, and, if its input is a
   column, an `_sql` twin built from the same constants (as `fit_sql` is);
3. give it where `Terms` are built, all in `candidates.py` (mypy names each one that misses
   it): `_candidate` (a candidate's terms, exact but for soonness), `tier_terms` (a video tier's
   bound) and `bound_terms` (the database's bound), and in the test below;
4. run `tests/matching/test_score.py`: a property test that the exact score never exceeds
   either bound, whatever the inputs (`service._evaluate` takes the candidate's terms and only
   puts in the real soonness).
"""

from __future__ import annotations

import math
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, case, func

WEIGHTS = {"fit": 40, "proximity": 30, "soonness": 20, "continuity": 10}
CORE_FIT = 1.0
NON_CORE_FIT = 0.6
PROXIMITY_HALF_KM = 10.0  # proximity is 1/2 this far away
RANK_UNITS = 10_000  # scores rank in ten-thousandths of a point
# Bounds computed by the database are compared with scores computed in Python: a bound is raised
# by far more than the two can differ by in rounding before it is floored to rank units.
ROUNDING_ALLOWANCE = 1e-9

T = TypeVar("T")  # a float in Python, an SQL expression in a statement


class Terms(NamedTuple, Generic[T]):
    """The score's terms, each from 0 to 1, in the order of `WEIGHTS`."""

    fit: T
    proximity: T
    soonness: T
    continuity: T


def _weighted(terms: Terms[Any]) -> Any:
    return sum(WEIGHTS[name] * value for name, value in zip(WEIGHTS, terms, strict=True))


def score(terms: Terms[float]) -> float:
    return float(_weighted(terms))


def rank_key(value: float) -> int:
    return math.floor(value * RANK_UNITS)


def bound_key_sql(terms: Terms[ColumnElement[Any]]) -> ColumnElement[int]:
    """SQL: the rank key of a score computed in the database, raised by the rounding allowance so
    it is never below the same score computed in Python."""
    return func.floor((_weighted(terms) + ROUNDING_ALLOWANCE) * RANK_UNITS)


def fit(is_core: bool) -> float:
    return CORE_FIT if is_core else NON_CORE_FIT


def fit_sql(is_core: ColumnElement[bool]) -> ColumnElement[float]:
    return case((is_core, fit(True)), else_=fit(False))


def proximity(distance_km: Any) -> Any:
    """1 on the doorstep, falling with every km (of a float, or of an SQL distance)."""
    return 1 / (1 + distance_km / PROXIMITY_HALF_KM)


def soonness(days_waited: Any, window_days: Any) -> Any:
    """1 when the first slot is on the window's first day, falling by 1/`window_days` a day (of
    numbers, or of SQL day counts with `window_days` a Double, so never integer division)."""
    return 1 - days_waited / window_days


def continuity(seen: bool) -> float:
    return 1.0 if seen else 0.0


def continuity_sql(seen: ColumnElement[bool]) -> ColumnElement[float]:
    return case((seen, continuity(True)), else_=continuity(False))
