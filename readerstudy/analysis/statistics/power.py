"""Power and sample size for a reader study, by simulation under an MRMC model.

The model (random readers and random cases on the logit scale):

    P(reader j answers case k correctly) = expit(mu + a_j + b_k),
    a_j ~ N(0, reader_sd^2),  b_k ~ N(0, case_sd^2),  all independent,

with mu chosen so that the population accuracy E[expit(mu + a + b)] equals
true_accuracy (Gauss-Hermite quadrature; with no random effects mu is just
logit(true_accuracy)). reader_sd says how much readers differ, case_sd how
much images differ in how easy they are to call; 0.3 and 0.6 are modest
defaults, to be replaced by estimates from a pilot.

Each simulated study is analysed as the report analyses a real one
(report/mrmc.py, mrmc_accuracy): the Obuchowski-Rockette analysis of the readers'
proportions correct, random readers and random cases, jackknife covariances
over cases and Hillis' degrees of freedom, and

* goal "equivalence": equivalence to chance shown when the 90% t interval
  lies inside 0.5 ± margin (two one-sided tests at alpha);
* goal "above_chance": accuracy shown above chance when the two-sided t test
  of 0.5 rejects at alpha with the estimate above 0.5.

Power is the share of simulated studies that reach the goal, with its Monte
Carlo standard error sqrt(p (1 - p) / n_sim). The simulation is vectorised
over studies (numpy), so a 4 x 4 grid at n_sim = 200 takes about a second.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import optimize, special, stats

GOALS = ("equivalence", "above_chance")
MAX_CELLS = 4_000_000  # simulated answers held in memory at once (~32 MB as float64)
METHOD = (
    "simulation under an MRMC model (reader and case random effects on the logit scale); each simulated study "
    "analysed by Obuchowski-Rockette on the readers' proportions correct, random readers and random cases, "
    "Hillis df"
)
GOAL_TEXT = {
    "equivalence": "equivalence to chance: the 90% t interval inside 0.5 ± margin",
    "above_chance": "accuracy above chance: two-sided t test of 0.5 at alpha, estimate above 0.5",
}


@dataclass(frozen=True)
class Power:
    n_readers: int
    n_cases: int
    power: float
    mc_se: float
    n_sim: int
    goal: str
    true_accuracy: float
    margin: float
    reader_sd: float
    case_sd: float
    alpha: float
    seed: int
    intercept: float  # mu, the logit-scale intercept that gives true_accuracy


def intercept_for(true_accuracy: float, sd: float) -> float:
    """mu with E[expit(mu + sd Z)] = true_accuracy for standard normal Z."""
    if not 0 < true_accuracy < 1:
        raise ValueError(f"true_accuracy must lie strictly between 0 and 1, got {true_accuracy}")
    if sd == 0:
        return float(special.logit(true_accuracy))
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()

    def gap(mu: float) -> float:
        return float(weights @ special.expit(mu + sd * nodes)) - true_accuracy

    return float(optimize.brentq(gap, -40, 40, xtol=1e-12))


def or_proportion(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised single-treatment OR analysis of proportion correct, random
    readers and random cases, for a stack of studies correct[study, reader, case]
    (0/1). Returns (estimate, se, df) per study; df is inf where the reader
    mean square is 0. The same numbers as mrmc.obuchowski_rockette_proportion
    (tests/test_power.py checks them)."""
    x = np.asarray(correct, dtype=float)
    _, r, c = x.shape
    if r < 2 or c < 2:
        raise ValueError("needs at least two readers and two cases")
    theta = x.mean(axis=2)
    ms_r = theta.var(axis=1, ddof=1)
    d = x - theta[:, :, None]
    column = d.sum(axis=1)
    off_diagonal = (column**2).sum(axis=1) - (d**2).sum(axis=(1, 2))
    cov2 = off_diagonal / (r * (r - 1)) / (c * (c - 1))
    denominator = ms_r + r * np.maximum(cov2, 0.0)
    se = np.sqrt(denominator / r)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(ms_r > 0, denominator**2 / (ms_r**2 / (r - 1)), np.inf)
    return theta.mean(axis=1), se, df


def reaches_goal(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, *, goal: str, margin: float,
                 alpha: float) -> np.ndarray:
    """Whether each analysed study reaches the goal (the report's decision rule)."""
    estimate, se, df = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (estimate, se, df)))
    defined = se > 0
    safe_se = np.where(defined, se, 1.0)
    finite = np.isfinite(df)
    safe_df = np.where(finite, df, 1.0)
    if goal == "equivalence":
        quantile = np.where(finite, stats.t.ppf(1 - alpha, safe_df), stats.norm.ppf(1 - alpha))
        half = quantile * safe_se
        reached = (estimate - half > 0.5 - margin) & (estimate + half < 0.5 + margin)
    elif goal == "above_chance":
        quantile = np.where(finite, stats.t.ppf(1 - alpha / 2, safe_df), stats.norm.ppf(1 - alpha / 2))
        reached = (estimate - 0.5) / safe_se > quantile
    else:
        raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
    return reached & defined


def simulate_power(
    n_readers: int,
    n_cases: int,
    *,
    true_accuracy: float,
    margin: float = 0.10,
    goal: str = "equivalence",
    reader_sd: float = 0.3,
    case_sd: float = 0.6,
    alpha: float = 0.05,
    n_sim: int = 200,
    seed: int = 0,
) -> Power:
    """Estimated power of a study with n_readers each reading the same n_cases
    (see the module docstring). Deterministic for a seed; each (readers, cases)
    size draws from its own stream, so a grid cell does not depend on the others."""
    _check(n_readers, n_cases, true_accuracy=true_accuracy, margin=margin, goal=goal, reader_sd=reader_sd,
           case_sd=case_sd, alpha=alpha, n_sim=n_sim)
    mu = intercept_for(true_accuracy, math.hypot(reader_sd, case_sd))
    rng = np.random.default_rng(np.random.SeedSequence([seed, n_readers, n_cases]))
    chunk = max(1, MAX_CELLS // (n_readers * n_cases))
    reached = 0
    for start in range(0, n_sim, chunk):
        size = min(chunk, n_sim - start)
        a = rng.normal(0.0, reader_sd, (size, n_readers, 1))
        b = rng.normal(0.0, case_sd, (size, 1, n_cases))
        correct = rng.random((size, n_readers, n_cases)) < special.expit(mu + a + b)
        estimate, se, df = or_proportion(correct)
        reached += int(reaches_goal(estimate, se, df, goal=goal, margin=margin, alpha=alpha).sum())
    power = reached / n_sim
    return Power(n_readers, n_cases, power, math.sqrt(power * (1 - power) / n_sim), n_sim, goal,
                 float(true_accuracy), float(margin), float(reader_sd), float(case_sd), float(alpha), seed, mu)


def sample_size_grid(
    readers: Sequence[int],
    cases: Sequence[int],
    *,
    true_accuracy: float,
    margin: float = 0.10,
    goal: str = "equivalence",
    reader_sd: float = 0.3,
    case_sd: float = 0.6,
    alpha: float = 0.05,
    n_sim: int = 200,
    seed: int = 0,
    target: float = 0.8,
) -> dict:
    """Power for every (readers, cases) combination, JSON-serialisable:

    method, goal, goal_text, settings {true_accuracy, margin, reader_sd,
    case_sd, alpha, n_sim, seed, target, intercept}, readers, cases,
    power[i][j] and mc_se[i][j] for readers[i] x cases[j] (4 decimals),
    meets_target[i][j], and smallest: the first size reaching the target,
    fewest answers (readers x cases) first, then fewest readers, as
    {n_readers, n_cases, power}, or None when none does.
    """
    readers = [int(r) for r in readers]
    cases = [int(c) for c in cases]
    if not readers or not cases:
        raise ValueError("give at least one number of readers and one number of cases")
    results = [[simulate_power(r, c, true_accuracy=true_accuracy, margin=margin, goal=goal, reader_sd=reader_sd,
                               case_sd=case_sd, alpha=alpha, n_sim=n_sim, seed=seed) for c in cases] for r in readers]
    meets = [[cell.power >= target for cell in row] for row in results]
    candidates = sorted(
        (cell for row in results for cell in row if cell.power >= target),
        key=lambda cell: (cell.n_readers * cell.n_cases, cell.n_readers),
    )
    first = candidates[0] if candidates else None
    return {
        "method": METHOD,
        "goal": goal,
        "goal_text": GOAL_TEXT[goal],
        "settings": {
            "true_accuracy": float(true_accuracy), "margin": float(margin), "reader_sd": float(reader_sd),
            "case_sd": float(case_sd), "alpha": float(alpha), "n_sim": n_sim, "seed": seed, "target": float(target),
            "intercept": round(results[0][0].intercept, 4),
        },
        "readers": readers,
        "cases": cases,
        "power": [[round(cell.power, 4) for cell in row] for row in results],
        "mc_se": [[round(cell.mc_se, 4) for cell in row] for row in results],
        "meets_target": meets,
        "smallest": None if first is None else {"n_readers": first.n_readers, "n_cases": first.n_cases,
                                               "power": round(first.power, 4)},
    }


PILOT_METHOD = (
    "from the pilot's Obuchowski-Rockette variance components of proportion correct: reader SD (logit) = "
    "sqrt(max(Var(R), 0)) / (p(1 - p)) and case SD (logit) = sqrt(max(c·Cov2, 0)) / (p(1 - p)), the delta method "
    "at the pilot's accuracy p, since a reader's accuracy varies by about p(1 - p)·a for a logit shift a"
)


def sds_from_components(var_r: float, cov2: float, n_cases: int, accuracy: float) -> tuple[float, float]:
    """The model's (reader_sd, case_sd) on the logit scale from OR components of
    proportion correct (Var(R): between-reader variance of true accuracies;
    Cov2: covariance of two readers' accuracies from sharing n_cases cases,
    so n_cases·Cov2 is the variance of a case's probability of a correct
    answer); see PILOT_METHOD. Negative ANOVA estimates count as 0."""
    if not 0 < accuracy < 1:
        raise ValueError(f"the pilot's accuracy must lie strictly between 0 and 1, got {accuracy}")
    slope = accuracy * (1 - accuracy)
    return math.sqrt(max(var_r, 0.0)) / slope, math.sqrt(max(n_cases * cov2, 0.0)) / slope


def smallest_for(grid: dict, target: float) -> dict | None:
    """The smallest design of a grid reaching `target` power: fewest answers, then fewest readers."""
    cells = [(r * c, r, c, p) for r, row in zip(grid["readers"], grid["power"]) for c, p in zip(grid["cases"], row)
             if p >= target]
    if not cells:
        return None
    _, r, c, p = min(cells)
    return {"n_readers": r, "n_cases": c, "power": p}


def _check(n_readers: int, n_cases: int, *, true_accuracy: float, margin: float, goal: str, reader_sd: float,
           case_sd: float, alpha: float, n_sim: int) -> None:
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
    if n_readers < 2 or n_cases < 2:
        raise ValueError("the MRMC analysis needs at least two readers and two cases")
    if not 0 < true_accuracy < 1:
        raise ValueError(f"true_accuracy must lie strictly between 0 and 1, got {true_accuracy}")
    if not (0 < margin < 0.5):
        raise ValueError(f"margin must lie strictly between 0 and 0.5, got {margin}")
    if reader_sd < 0 or case_sd < 0:
        raise ValueError("standard deviations must be 0 or more")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie strictly between 0 and 0.5, got {alpha}")
    if n_sim < 1:
        raise ValueError("n_sim must be 1 or more")


def as_dict(result: Power) -> dict:
    return asdict(result)
