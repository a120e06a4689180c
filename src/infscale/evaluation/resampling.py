"""Paired bootstrap over problems and seeds: every curve of a study re-estimated on the same resampled problems.

`ProblemBootstrap` reads the per-problem outcomes the metrics rule writes (`<strategy>.problems.csv`: one row per
(dataset, model, strategy, kind, n, seed, aggregation, problem) with `correct` 0/1) and returns, for any curve,
its error at each budget n as an array of shape (1 + draws, budgets): row 0 the plain estimate (mean over problems
and seeds, as the metrics table), rows 1.. the bootstrap draws. Draws are paired: within a data set, draw b weighs
each problem and each seed the same way for every model, strategy and aggregation, so a difference between two
curves is resampled as a difference (the noise the problems share cancels).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from infscale.evaluation.evaluation import EASY_LEVELS, HARD_LEVELS

CURVE_KEYS = ["dataset", "model", "strategy", "kind", "aggregation"]


@dataclass
class ProblemBootstrap:
    problems: pd.DataFrame
    draws: int = 1000
    seed: int = 0
    _index: dict = field(default_factory=dict, init=False, repr=False)
    _weights: dict = field(default_factory=dict, init=False, repr=False)
    _groups: dict = field(default_factory=dict, init=False, repr=False)
    _curves: dict = field(default_factory=dict, init=False, repr=False)  # computed curves, by their arguments

    def __post_init__(self) -> None:
        df = self.problems.copy()
        if "kind" not in df.columns:
            df["kind"] = "budget"
        df["id"] = df["id"].astype(str)
        rng = np.random.default_rng(self.seed)
        for ds, g in df.groupby("dataset"):  # sorted (groupby's default): draws do not depend on the rows' order
            ids = sorted(g["id"].unique())
            seeds = sorted(g["seed"].unique())
            levels = g.drop_duplicates("id").set_index("id")["level"].reindex(ids)
            self._index[ds] = ({p: i for i, p in enumerate(ids)}, {s: i for i, s in enumerate(seeds)}, levels)
            # Multinomial counts = resampling with replacement; row 0 weighs everything once.
            pw = np.vstack([np.ones(len(ids)), rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), self.draws)])
            sw = np.vstack([np.ones(len(seeds)), rng.multinomial(len(seeds), np.full(len(seeds), 1 / len(seeds)),
                                                                 self.draws)])
            self._weights[ds] = (pw, sw)
        self._groups = dict(iter(df.groupby(CURVE_KEYS)))

    def has(self, dataset: str, model: str, strategy: str, aggregation: str, kind: str = "budget") -> bool:
        return (dataset, model, strategy, kind, aggregation) in self._groups

    def subset_mask(self, dataset: str, subset: str) -> np.ndarray:
        ids, _, levels = self._index[dataset]
        if subset == "all":
            return np.ones(len(ids), bool)
        want = EASY_LEVELS if subset == "easy" else HARD_LEVELS
        return np.array([lv is not None and not pd.isna(lv) and int(lv) in want for lv in levels])

    def curve(self, dataset: str, model: str, strategy: str, aggregation: str, subset: str = "all",
              kind: str = "budget") -> tuple[np.ndarray, np.ndarray]:
        """(budgets n ascending, error array of shape (1 + draws, len(n)))."""
        key = (dataset, model, strategy, aggregation, subset, kind)
        if key not in self._curves:
            self._curves[key] = self._curve(*key)
        return self._curves[key]

    def _curve(self, dataset: str, model: str, strategy: str, aggregation: str, subset: str,
               kind: str) -> tuple[np.ndarray, np.ndarray]:
        g = self._groups.get((dataset, model, strategy, kind, aggregation))
        if g is None:
            return np.array([], int), np.zeros((self.draws + 1, 0))
        pid, sid, _ = self._index[dataset]
        pw, sw = self._weights[dataset]
        keep = self.subset_mask(dataset, subset)
        ns = np.array(sorted(g["n"].unique()))
        errors = np.full((self.draws + 1, len(ns)), np.nan)
        for j, (n, gn) in enumerate(g.groupby("n")):  # in ascending n (groupby sorts), as ns
            seeds = sorted(gn["seed"].unique())
            c = np.full((len(pid), len(seeds)), np.nan)
            c[gn["id"].map(pid).to_numpy(), gn["seed"].map({s: i for i, s in enumerate(seeds)}).to_numpy()] = \
                gn["correct"].to_numpy()
            rows = keep & ~np.isnan(c).any(axis=1)
            if not rows.any():
                continue
            p = pw[:, rows]
            v = sw[:, [sid[s] for s in seeds]]
            v = np.where(v.sum(axis=1, keepdims=True) > 0, v, 1.0)  # a draw without this curve's seeds: all once
            right = ((p @ c[rows]) * v).sum(axis=1)  # per draw: sum over problems and seeds of weight x correct
            total = p.sum(axis=1) * v.sum(axis=1)
            with np.errstate(invalid="ignore"):  # 0 / 0: a draw without any of the subset's problems, NaN
                errors[:, j] = 1.0 - right / total
        return ns, errors


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high): row 0 and the central `level` percentile interval of the draws (NaN draws, where a
    statistic is undefined, are left out; -inf and +inf count as values)."""
    values = np.asarray(values, float)
    draws = values[1:][~np.isnan(values[1:])]
    if len(draws) == 0:
        return float(values[0]), np.nan, np.nan
    tail = (1 - level) / 2
    lo = float(np.quantile(draws, tail, method="lower"))
    hi = float(np.quantile(draws, 1 - tail, method="higher"))
    return float(values[0]), lo, hi
