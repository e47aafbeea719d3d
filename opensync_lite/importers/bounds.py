"""The sync routes' bounds (``schemas.MAX_COUNT``, ``schemas.MAX_COST``) for figures read from
files on disk: a value outside them (Infinity, NaN, 1e308, a negative or absurd count) is not
recorded, and a sum of recorded values stops at the bound, so whatever a history holds, every
total the API and exports answer stays a finite JSON number."""

import math

from ..schemas import MAX_COST, MAX_COUNT


def count(value):
    """A recorded token count within bounds, else 0 (booleans and floats are no counts)."""
    return value if type(value) is int and 0 <= value <= MAX_COUNT else 0


def count_of(mapping, name):
    return count(mapping.get(name) or 0)


def cost(value):
    """A recorded cost within bounds, or None."""
    if type(value) in (int, float) and math.isfinite(value) and 0 <= value <= MAX_COST:
        return float(value)
    return None


def total_count(total):
    """A sum of counts, each within bounds, stopped at MAX_COUNT (the schemas refuse more)."""
    return min(total, MAX_COUNT)


def total_cost(total):
    """A sum of costs, each within bounds, stopped at MAX_COST: clamped rather than left
    unpriced, since the client did record that much (at least) and an estimate from tokens
    would replace the truth with a guess."""
    return min(total, MAX_COST)
