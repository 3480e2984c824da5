"""The experience score: penalties that fade over event time.

Each quality observation adds points to a *reason* (``voice.call_dropped``,
``data.latency_ms`` ...) of one dimension; an alarm on one of the customer's
resources holds a ``fault.<resource>`` reason on the availability dimension while
it is active. Every reason's points halve each half-life of event time, so the
score recovers when nothing goes wrong. A dimension's score is 100 minus the sum
of its reasons (floored at 0); the overall score is 100 minus the weighted
dimension penalties (floored at 0), and each reason's share of that is its
``impact``.
See docs/scoring.md.
"""

from __future__ import annotations

from .rules import DIMENSIONS, Scoring

# A reason below this many points is dropped (it no longer matters).
FORGET_BELOW = 0.01
REASON_CAP = 100.0


class ScoreModel:
    """Pure scoring functions over a customer's penalty dict."""

    def __init__(self, scoring: Scoring, half_life_s: float):
        self.scoring = scoring
        self.half_life_s = half_life_s
        self.weights = {d: scoring.weights[d] for d in DIMENSIONS}
        self.fault_points = dict(scoring.fault_severity)
        self.top = scoring.reasons
        # metric -> (dimension or None for the record's service, kind, params)
        self._metrics = []
        for name, rule in scoring.metrics.items():
            dim = None if rule.dimension == "service" else rule.dimension
            self._metrics.append((name, dim, rule.points, rule.below, rule.above, rule.per_unit, rule.max))

    # --- time --------------------------------------------------------------
    def decay_factor(self, elapsed_s: float) -> float:
        if elapsed_s <= 0:
            return 1.0
        return 0.5 ** (elapsed_s / self.half_life_s)

    def decay(self, penalties: dict[str, float], elapsed_s: float) -> None:
        """Fade every reason by ``elapsed_s`` of event time, in place."""
        if elapsed_s <= 0 or not penalties:
            return
        factor = self.decay_factor(elapsed_s)
        for code in list(penalties):
            value = penalties[code] * factor
            if value < FORGET_BELOW:
                del penalties[code]
            else:
                penalties[code] = value

    # --- observations ------------------------------------------------------
    def observation_points(self, service: str, metrics) -> list[tuple[str, float]]:
        """(reason code, points) that one quality record adds."""
        out = []
        for name, dim, points, below, above, per_unit, cap in self._metrics:
            value = getattr(metrics, name)
            if value is None:
                continue
            if points is not None:
                add = points if value is True else 0.0
            elif below is not None:
                add = (below - value) * per_unit if value < below else 0.0
            else:
                add = (value - above) * per_unit if value > above else 0.0
            if add > 0:
                out.append((f"{dim or service}.{name}", min(add, cap)))
        return out

    @staticmethod
    def add(penalties: dict[str, float], code: str, points: float) -> None:
        value = penalties.get(code, 0.0) + points
        penalties[code] = REASON_CAP if value > REASON_CAP else value

    # --- the score ---------------------------------------------------------
    def evaluate(self, penalties: dict[str, float], fault_levels: dict[str, float]):
        """-> (score, dimensions, contributions) where contributions is
        ``[(code, impact)]`` with impact <= 0, most negative first, all of them.

        ``fault_levels`` maps resource -> points of its active alarms; they
        hold at that level rather than fading (a fading residue after the clear
        lives in ``penalties`` under the same code).
        """
        per_dim = _by_dimension(penalties, fault_levels)
        dimensions = {}
        contributions = []
        lost = 0.0
        for dim in DIMENSIONS:
            reasons = per_dim.get(dim)
            if not reasons:
                dimensions[dim] = 100.0
                continue
            total = sum(reasons.values())
            scale = 1.0 if total <= 100.0 else 100.0 / total
            dimensions[dim] = 100.0 - total * scale
            weight = self.weights[dim]
            for code, value in reasons.items():
                impact = weight * value * scale
                lost += impact
                contributions.append((code, impact))
        # the score cannot go below 0: scale every contribution alike
        overall = 1.0 if lost <= 100.0 else 100.0 / lost
        contributions = [(code, -impact * overall) for code, impact in contributions]
        contributions.sort(key=lambda item: (item[1], item[0]))
        return 100.0 - min(lost, 100.0), dimensions, contributions

    def score(self, penalties: dict[str, float], fault_levels: dict[str, float]) -> float:
        """The overall score alone: what :meth:`evaluate` returns first, to the
        bit (the same sums in the same order), without the dimensions and the
        sorted contributions the hot path does not need (issue 3)."""
        if not penalties and not fault_levels:
            return 100.0
        per_dim = _by_dimension(penalties, fault_levels)
        lost = 0.0
        weights = self.weights
        for dim in DIMENSIONS:
            reasons = per_dim.get(dim)
            if not reasons:
                continue
            total = sum(reasons.values())
            scale = 1.0 if total <= 100.0 else 100.0 / total
            weight = weights[dim]
            for value in reasons.values():
                lost += weight * value * scale
        return 100.0 - min(lost, 100.0)

    def reasons(self, contributions) -> list[dict]:
        out = []
        for code, impact in contributions[: self.top]:
            rounded = round(impact, 1)
            if rounded < 0:
                out.append({"code": code, "impact": rounded})
        return out


def _by_dimension(penalties: dict[str, float], fault_levels: dict[str, float]) -> dict[str, dict[str, float]]:
    """The reasons of each dimension: penalties by their code's prefix, ``fault.*``
    under availability, and each active fault's level where it is above its residue."""
    per_dim: dict[str, dict[str, float]] = {}
    for code, value in penalties.items():
        dim = code.split(".", 1)[0]
        if dim == "fault":
            dim = "availability"
        per_dim.setdefault(dim, {})[code] = value
    if fault_levels:
        avail = per_dim.setdefault("availability", {})
        for resource, level in fault_levels.items():
            code = "fault." + resource
            if level > avail.get(code, 0.0):
                avail[code] = level
    return per_dim
