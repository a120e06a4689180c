"""Compute-optimal model size (paper Fig. 1, Sec. 4.2): lower envelopes, the best model per budget,
and the fit log10(C) = a * log10(N_opt) + b (paper: a = 1.19, b = 2.03 on Pythia / GSM8K)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

PAPER_A, PAPER_B = 1.19, 2.03
_REL_TOL = 1e-9  # budgets built by exp(log(x)) must still reach x itself


def lower_envelope(x: ArrayLike, error: ArrayLike, budgets: ArrayLike) -> np.ndarray:
    """Best error of one curve reachable with at most C FLOPs, for each C in `budgets`.

    A non-increasing step function of C; NaN below the cheapest point.
    """
    xs, es = np.asarray(x, float), np.asarray(error, float)
    ok = np.isfinite(xs) & np.isfinite(es)
    xs, es = xs[ok], es[ok]
    order = np.argsort(xs, kind="stable")
    xs, es = xs[order], es[order]
    best = np.minimum.accumulate(es) if len(es) else es  # running best along x
    cs = np.asarray(budgets, float)
    idx = np.searchsorted(xs, cs * (1 + _REL_TOL), side="right") - 1  # last point with x <= C
    out = np.full(cs.shape, np.nan)
    out[idx >= 0] = best[idx[idx >= 0]]
    return out


def default_budgets(x: ArrayLike, n_points: int = 12) -> np.ndarray:
    """A log grid spanning the observed FLOPs."""
    xs = np.asarray(x, float)
    xs = xs[np.isfinite(xs) & (xs > 0)]
    if len(xs) == 0:
        return np.array([])
    return np.logspace(np.log10(xs.min()), np.log10(xs.max()), n_points)


def compute_optimal(summary: pd.DataFrame, budgets: ArrayLike | None = None, *,
                    x: str = "policy_flops", strategy: str = "sampling",
                    aggregation: str = "weighted_majority", subset: str = "all") -> pd.DataFrame:
    """Per budget C: each model's best error at <= C FLOPs and the best model (ties -> smaller model).

    `summary` is a seed_summary of one dataset (other datasets raise). Columns: budget, best_model,
    best_params, best_error, and error_<model> for every model (NaN where the model cannot run at C).
    """
    s = summary[(summary["strategy"] == strategy) & (summary["aggregation"] == aggregation)
                & (summary["subset"] == subset)]
    if s["dataset"].nunique() > 1:
        raise ValueError(f"compute_optimal: several datasets {sorted(s['dataset'].unique())}")
    cs = default_budgets(s[x]) if budgets is None else np.asarray(budgets, float)
    models = (s.groupby("model")["params"].first().sort_values(kind="stable"))  # small -> large
    out = pd.DataFrame({"budget": cs})
    errs = {}
    for m in models.index:
        c = s[s["model"] == m]
        errs[m] = lower_envelope(c[x], c["error_mean"], cs)
    best_m, best_p, best_e = [], [], []
    for i in range(len(cs)):
        cand = [(errs[m][i], models[m], m) for m in models.index if np.isfinite(errs[m][i])]
        if not cand:
            best_m.append(None)
            best_p.append(np.nan)
            best_e.append(np.nan)
            continue
        e, p, m = min(cand, key=lambda t: (t[0], t[1]))  # lowest error, then fewest params
        best_m.append(m)
        best_p.append(float(p))
        best_e.append(e)
    out["best_model"], out["best_params"], out["best_error"] = best_m, best_p, best_e
    for m in models.index:
        out[f"error_{m}"] = errs[m]
    out.attrs.update(x=x, strategy=strategy, aggregation=aggregation, subset=subset,
                     models={m: int(p) for m, p in models.items()})
    return out


@dataclass(frozen=True)
class SizeFit:
    """Least-squares fit log10(C) = a * log10(N_opt) + b over budget points."""
    a: float
    b: float
    r2: float
    n_points: int
    reason: str = ""

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    def n_opt(self, budget: ArrayLike) -> np.ndarray:
        """Optimal size predicted for budget C: N = 10 ** ((log10 C - b) / a)."""
        return 10 ** ((np.log10(np.asarray(budget, float)) - self.b) / self.a)


def fit_optimal_size(table: pd.DataFrame) -> SizeFit:
    """Fit log10(budget) = a * log10(best_params) + b on rows of a compute_optimal table."""
    t = table[np.isfinite(table["best_params"].astype(float)) & (table["budget"] > 0)]
    n = len(t)
    if t["best_params"].nunique() < 2:
        return SizeFit(math.nan, math.nan, math.nan, n,
                       f"fewer than 2 distinct optimal sizes over {n} budget points")
    lx, ly = np.log10(t["best_params"].to_numpy(float)), np.log10(t["budget"].to_numpy(float))
    a, b = np.polyfit(lx, ly, 1)
    resid = ly - (a * lx + b)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return SizeFit(float(a), float(b), r2, n)


def compute_optimal_fit(summary: pd.DataFrame, dataset: str, strategy: str, aggregation: str,
                        x: str = "policy_flops", *, subset: str = "all",
                        budgets: ArrayLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame, SizeFit]:
    """Paper Fig. 1's numbers for one (dataset, strategy, aggregation, subset) of a seed summary: its rows (the
    curves), their compute_optimal table with the fit's columns fit_a, fit_b, fit_r2, fit_n_points, fit_reason
    (and attrs["fit"]), and the fit log10 C = a log10 N_opt + b itself."""
    s = summary[(summary["dataset"] == dataset) & (summary["strategy"] == strategy)
                & (summary["aggregation"] == aggregation) & (summary["subset"] == subset)]
    if s.empty:
        raise ValueError(f"no rows for {dataset!r} {strategy!r} {aggregation!r} {subset!r}")
    table = compute_optimal(s, budgets, x=x, strategy=strategy, aggregation=aggregation,
                            subset=subset)
    fit = fit_optimal_size(table)
    out = table.copy()
    for k, v in fit.as_dict().items():
        out[f"fit_{k}"] = v
    out.attrs["fit"] = fit.as_dict()
    return s, out, fit
