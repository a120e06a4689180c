"""Coverage scaling (Brown et al. 2024, "Large Language Monkeys", arXiv 2407.21787): log(coverage) ~ a * k^b
(coverage = exp(a k^b), a < 0, b < 0) per (dataset, model), fitted on sampling's coverage over the budget k."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

MIN_POINTS = 2  # distinct k the fit needs (two parameters)
COLUMNS = ["dataset", "model", "a", "b", "rmse_log", "n_points", "n_dropped", "reason"]


@dataclass(frozen=True)
class CoverageFit:
    """log(coverage) = a * k^b over n_points budgets; n_dropped points had coverage 0 or 1 (module: fit_coverage);
    rmse_log is the root mean squared error of log(coverage) over the fitted points."""
    a: float
    b: float
    rmse_log: float
    n_points: int
    n_dropped: int = 0
    reason: str = ""

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    def coverage(self, k: ArrayLike) -> np.ndarray:
        return np.exp(self.a * np.asarray(k, float) ** self.b)


def fit_coverage(k: ArrayLike, coverage: ArrayLike) -> CoverageFit:
    """Fit log(coverage) = a k^b.

    Points with coverage 1 (log 0: the curve has reached its ceiling, any a k^b -> 0 fits it) or 0 (log -inf) carry
    no information on a and b and are left out, counted in n_dropped. Fewer than MIN_POINTS distinct k left: a, b
    and rmse_log are NaN and `reason` says why. The fit starts from the exact line log(-log c) = log(-a) + b log k,
    then minimises the squared error of log(coverage) itself (what rmse_log reports).
    """
    ks, cs = np.asarray(k, float), np.asarray(coverage, float)
    if ks.shape != cs.shape:
        raise ValueError(f"fit_coverage: {ks.size} budgets but {cs.size} coverages")
    if np.any(~np.isfinite(ks) | (ks < 1)) or np.any(~np.isfinite(cs) | (cs < 0) | (cs > 1)):
        raise ValueError("fit_coverage: budgets must be >= 1 and coverages finite in [0, 1]")
    ok = (cs > 0) & (cs < 1)
    ks, cs, dropped = ks[ok], cs[ok], int((~ok).sum())
    if len(np.unique(ks)) < MIN_POINTS:
        return CoverageFit(math.nan, math.nan, math.nan, len(ks), dropped,
                           f"{len(np.unique(ks))} budget(s) with 0 < coverage < 1, need {MIN_POINTS}")
    lk, lc = np.log(ks), np.log(cs)
    b, intercept = np.polyfit(lk, np.log(-lc), 1)
    a = -math.exp(intercept)
    from scipy.optimize import least_squares

    refined = least_squares(lambda p: p[0] * ks ** p[1] - lc, x0=[a, b])
    if refined.success and np.all(np.isfinite(refined.x)):
        a, b = refined.x
    rmse = float(np.sqrt(np.mean((a * ks ** b - lc) ** 2)))
    return CoverageFit(float(a), float(b), rmse, len(ks), dropped)


def coverage_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Sampling's coverage per (dataset, model, n), all problems, mean over seeds (one aggregation's rows: coverage
    is the same under each)."""
    if "coverage" not in metrics.columns:
        raise ValueError("the metrics carry no coverage column: rerun the metrics rule")
    s = metrics[(metrics["strategy"] == "sampling") & (metrics["subset"] == "all")]
    if s.empty:
        raise ValueError("no sampling rows (subset all) in the metrics")
    s = s.drop_duplicates(["dataset", "model", "n", "seed"])
    return s.groupby(["dataset", "model", "n"], sort=True)["coverage"].mean().reset_index()


def coverage_fit_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model): COLUMNS, the fit of its sampling coverage over the budgets."""
    rows = [{"dataset": ds, "model": m, **fit_coverage(g["n"], g["coverage"]).as_dict()}
            for (ds, m), g in coverage_curves(metrics).groupby(["dataset", "model"], sort=True)]
    return pd.DataFrame(rows, columns=COLUMNS)
