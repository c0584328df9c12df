"""Paired differences between two training arms scored on the same rows with the same seeds (`dhrd compare`).

The interval is a two-level bootstrap: each draw resamples the seeds (with replacement) and the evaluation rows
(with replacement; the same rows for both arms, so the comparison stays paired), and takes the mean over the drawn
seeds of the first arm's metric minus the second's on the drawn rows. It therefore widens with both sources of
noise a user meets: another seed (the arms' runs disagree from seed to seed by several points on a few hundred
rows) and another sample of rows. McNemar's test would cover only the rows, one seed at a time, and only accuracy;
the bootstrap works for every kind's metric, F1 and MSE included, which are not sums over rows.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .base import ProblemKind

# Metrics in [0, 1] that read as percentage points; others (MSE, correlations) keep their own units.
POINTS = ("accuracy", "macro_f1", "micro_f1", "exact_match")


def metric_scale(metric: str) -> tuple[float, str]:
    """(factor, unit) in which differences of `metric` are reported."""
    return (100.0, " points") if metric in POINTS else (1.0, "")


def arm_scores(kind: ProblemKind, predictions: np.ndarray, labels: np.ndarray, num_outputs: int, metric: str):
    """`metric` of decided `predictions` against `labels`."""
    return float(kind.scores(predictions, labels, num_outputs)[metric])


@dataclass(frozen=True)
class PairedDifference:
    """`first − second` on `metric`, oriented so that a positive gain means `first` is better, in report units."""

    first: str
    second: str
    metric: str
    per_seed: list[float]
    mean: float
    std: float
    seeds_ahead: int
    low: float  # the 95% interval (2.5th and 97.5th percentiles of the bootstrap draws)
    high: float
    draws: int

    @property
    def beyond_the_spread(self) -> bool:
        return self.low > 0 or self.high < 0

    def verdict(self, question: str) -> str:
        """One line in plain words: e.g. `the rationales' content adds +1.2 ± 0.8 points over the shuffled control
        (3 of 3 seeds ahead; 95% interval -0.4 to +2.9): within the spread`."""
        factor, unit = metric_scale(self.metric)
        digits = 1 if factor != 1 else 4  # points read to a tenth; MSE and correlations need more
        direction = "" if self.metric in POINTS else " (positive: better)"
        if self.low > 0:
            call = "beyond the spread: a real gain"
        elif self.high < 0:
            call = "beyond the spread: a real loss"
        else:
            call = "within the spread: not distinguishable from no difference"
        return (
            f"{question}: {self.mean:+.{digits}f} ± {self.std:.{digits}f}{unit} of {self.metric}{direction} "
            f"({self.seeds_ahead} of {len(self.per_seed)} seeds ahead; 95% interval {self.low:+.{digits}f} to "
            f"{self.high:+.{digits}f}): {call}"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "beyond_the_spread": self.beyond_the_spread}


def paired_difference(
    kind: ProblemKind,
    first: str,
    second: str,
    predictions: Mapping[str, Sequence[np.ndarray]],
    labels: np.ndarray,
    num_outputs: int,
    metric: str,
    draws: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """The paired difference of arms `first` and `second`; `predictions[arm][k]` are the arm's decided predictions
    with the k-th seed, row for row against `labels` (the same seeds, in the same order, for both arms)."""
    sign = 1.0 if kind.metric_directions.get(metric, True) else -1.0
    factor, _ = metric_scale(metric)
    scale = sign * factor
    ours, theirs = predictions[first], predictions[second]
    if len(ours) != len(theirs) or not ours:
        raise ValueError(f"{first} and {second} need results for the same seeds ({len(ours)} vs {len(theirs)}).")

    def gain(seed_index: int, rows: np.ndarray | slice) -> float:
        return scale * (
            arm_scores(kind, ours[seed_index][rows], labels[rows], num_outputs, metric)
            - arm_scores(kind, theirs[seed_index][rows], labels[rows], num_outputs, metric)
        )

    every_row = slice(None)
    per_seed = [gain(k, every_row) for k in range(len(ours))]
    rng = np.random.default_rng(seed)
    samples = np.empty(draws)
    for draw in range(draws):
        seeds = rng.integers(0, len(ours), len(ours))
        rows = rng.integers(0, len(labels), len(labels))
        samples[draw] = np.mean([gain(int(k), rows) for k in seeds])
    low, high = np.percentile(samples, [2.5, 97.5])
    return PairedDifference(
        first=first,
        second=second,
        metric=metric,
        per_seed=[round(value, 6) for value in per_seed],
        mean=round(float(np.mean(per_seed)), 6),
        std=round(float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0, 6),
        seeds_ahead=sum(value > 0 for value in per_seed),
        low=round(float(low), 6),
        high=round(float(high), 6),
        draws=draws,
    )
