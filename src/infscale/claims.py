"""Claims scorecard (DESIGN.md): each of the paper's claims evaluated on a metrics table, with a
verdict (holds | fails | cannot_check), the measured numbers, and what was compared."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from infscale.report import PathLike, atomic_write_csv, seed_summary
from infscale.scaling import PAPER_A, PAPER_B, compute_optimal, fit_optimal_size

CLAIMS = {
    1: "error decreases with samples and saturates (sampling + majority vote)",
    2: "weighted majority voting is at least as good as majority voting at equal n",
    3: "REBASE reaches a lower error than sampling at equal FLOPs, for each model",
    4: "MCTS is worse than sampling at equal FLOPs",
    5: "the compute-optimal model size grows with the budget (log10 C = a log10 N + b)",
    6: "REBASE's gain over sampling is larger on hard problems (levels 3-5) than on easy ones (1-2)",
}
COLUMNS = ["claim_id", "claim", "verdict", "measured", "detail"]
WMV = "weighted_majority"
Unit = tuple[str, str]  # (dataset, model)
# A per-unit check returns (holds or None when it cannot be checked, measured text).
Check = tuple[bool | None, str]


def _row(cid: int, verdict: str, measured: str, detail: str) -> dict[str, object]:
    return {"claim_id": cid, "claim": CLAIMS[cid], "verdict": verdict, "measured": measured,
            "detail": detail}


def _combine(cid: int, results: dict[str, Check], what: str) -> dict[str, object]:
    """Holds when every checkable unit holds; fails if any fails; cannot_check if none checkable."""
    checked = {k: v for k, v in results.items() if v[0] is not None}
    skipped = [f"{k} ({v[1]})" for k, v in results.items() if v[0] is None]
    detail = what + (f"; not checkable: {', '.join(skipped)}" if skipped else "")
    if not checked:
        return _row(cid, "cannot_check", "", detail if results else what)
    verdict = "holds" if all(v[0] for v in checked.values()) else "fails"
    return _row(cid, verdict, "; ".join(f"{k}: {v[1]}" for k, v in checked.items()), detail)


def _curve(s: pd.DataFrame, strategy: str, agg: str, x: str) -> pd.DataFrame:
    return s[(s["strategy"] == strategy) & (s["aggregation"] == agg)].sort_values(x)


def _per_unit(s: pd.DataFrame, fn: Callable[[pd.DataFrame], Check]) -> dict[str, Check]:
    return {f"{ds}/{m}": fn(g) for (ds, m), g in s.groupby(["dataset", "model"], sort=True)}


def _at_equal_flops(base: pd.DataFrame, other: pd.DataFrame, x: str) -> np.ndarray:
    """other's error minus base's error interpolated (linear in log10 x) at other's FLOPs; only
    points inside base's FLOPs range are compared (no extrapolation)."""
    bx, be = np.log10(base[x].to_numpy(float)), base["error_mean"].to_numpy(float)
    ox, oe = np.log10(other[x].to_numpy(float)), other["error_mean"].to_numpy(float)
    if len(bx) < 2:
        return np.array([])
    inside = (ox >= bx.min()) & (ox <= bx.max())
    return oe[inside] - np.interp(ox[inside], bx, be)


def _claim1(s: pd.DataFrame, x: str) -> dict[str, object]:
    def check(g: pd.DataFrame) -> Check:
        c = _curve(g, "sampling", "majority", x).sort_values("n")
        n, e = c["n"].to_numpy(), c["error_mean"].to_numpy()
        if len(n) < 3:
            return None, f"{len(n)} sampling budgets, need 3"
        # Improvement per doubling of n along the grid. The largest earlier gain is the reference, not the
        # first: a majority vote of 2 always equals its first sample (ties go to the first), so n=1 -> 2 gains 0.
        gains = (e[:-1] - e[1:]) / np.log2(n[1:] / n[:-1])
        best_earlier, last = gains[:-1].max(), gains[-1]
        ok = bool(e[-1] < e[0] and last < best_earlier)
        return ok, (f"err n={n[0]} {100 * e[0]:.1f}% -> n={n[-1]} {100 * e[-1]:.1f}%, gain/doubling "
                    f"best earlier {100 * best_earlier:.2f}pp, last {100 * last:.2f}pp")
    return _combine(1, _per_unit(s, check),
                    "sampling + majority vote, subset all, mean over seeds: error at largest n < at "
                    "smallest n, and the last doubling's gain < the largest gain of an earlier doubling")


def _claim2(s: pd.DataFrame) -> dict[str, object]:
    c = s[(s["strategy"] == "sampling") & (s["n"] > 1)]
    w = c.pivot_table(index=["dataset", "model", "n"], columns="aggregation", values="error_mean")
    if not {"majority", WMV} <= set(w.columns):
        return _row(2, "cannot_check", "", "no sampling rows with n > 1 under both votes")
    d = (w[WMV] - w["majority"]).dropna()
    if d.empty:
        return _row(2, "cannot_check", "", "no sampling rows with n > 1 under both votes")
    share, mean = float((d <= 1e-12).mean()), float(d.mean())
    ok = share >= 0.5 and mean <= 0
    return _row(2, "holds" if ok else "fails",
                f"WMV <= MV at {share:.0%} of {len(d)} points; mean WMV - MV = {100 * mean:+.2f}pp",
                "sampling, subset all, every (dataset, model, n > 1), error mean over seeds; holds "
                "when the share >= 50% and the mean difference <= 0")


def _vs_sampling(s: pd.DataFrame, strategy: str, x: str, better: bool) -> dict[str, Check]:
    """Per model: `strategy` vs sampling (weighted majority) at equal FLOPs; `better` asks for a lower
    error (REBASE), otherwise a higher one (MCTS)."""
    def check(g: pd.DataFrame) -> Check:
        base, other = _curve(g, "sampling", WMV, x), _curve(g, strategy, WMV, x)
        if other.empty or len(base) < 2:
            return None, f"no {strategy} rows" if other.empty else "fewer than 2 sampling points"
        d = _at_equal_flops(base, other, x)
        if len(d) == 0:
            return None, f"no {strategy} point inside sampling's FLOPs range"
        sign = -1 if better else 1
        share = float((sign * d > 0).mean())
        ok = bool(sign * d.mean() > 0 and share >= 0.5)
        word = "lower" if better else "higher"
        return ok, (f"{strategy} {word} at {int(round(share * len(d)))}/{len(d)} points, mean "
                    f"{strategy} - sampling = {100 * d.mean():+.2f}pp")
    return _per_unit(s, check)


def _claim34(s: pd.DataFrame, x: str, cid: int, strategy: str) -> dict[str, object]:
    if not (s["strategy"] == strategy).any():
        return _row(cid, "cannot_check", "", f"no {strategy} rows in the metrics")
    better = strategy == "rebase"
    return _combine(cid, _vs_sampling(s, strategy, x, better),
                    f"weighted majority, subset all: {strategy} error minus sampling's error "
                    f"interpolated (log-x) at {strategy}'s FLOPs, points inside sampling's range; per "
                    f"model {'holds' if better else 'MCTS worse'} when the mean difference is "
                    f"{'< 0' if better else '> 0'} and at least half the points agree")


def _claim5(s: pd.DataFrame, x: str) -> dict[str, object]:
    results: dict[str, Check] = {}
    for ds, g in s.groupby("dataset", sort=True):
        g = g[(g["strategy"] == "sampling") & (g["aggregation"] == WMV)]
        if g["model"].nunique() < 2:
            results[ds] = (None, f"{g['model'].nunique()} model(s), need 2")
            continue
        t = compute_optimal(g, x=x, strategy="sampling", aggregation=WMV)
        fit = fit_optimal_size(t)
        n_opt = t["best_params"].dropna().to_numpy()
        mono = bool(np.all(np.diff(n_opt) >= 0))
        ok = bool(np.isfinite(fit.a) and fit.a > 0 and mono)
        sizes = "->".join(f"{p:.3g}" for p in dict.fromkeys(n_opt))
        fit_txt = (f"a={fit.a:.2f}, b={fit.b:.2f}, R2={fit.r2:.2f}" if np.isfinite(fit.a)
                   else f"no fit ({fit.reason})")
        results[ds] = (ok, f"{fit_txt} (paper a={PAPER_A}, b={PAPER_B}); N_opt over "
                           f"{len(n_opt)} budgets {sizes}, non-decreasing={mono}")
    return _combine(5, results, "sampling + weighted majority, subset all, per dataset: best model "
                                "(lower envelope over seeds' mean) on a 12-point log grid of FLOPs; "
                                "holds when the fit's a > 0 and N_opt never decreases")


def _claim6(s_sub: pd.DataFrame, x: str) -> dict[str, object]:
    if not (s_sub["strategy"] == "rebase").any():
        return _row(6, "cannot_check", "", "no rebase rows in the metrics")
    if not {"easy", "hard"} <= set(s_sub["subset"]):
        return _row(6, "cannot_check", "", "no easy/hard subsets (data set without difficulty levels)")

    def check(g: pd.DataFrame) -> Check:
        gains = {}
        for sub in ("easy", "hard"):
            h = g[g["subset"] == sub]
            d = _at_equal_flops(_curve(h, "sampling", WMV, x), _curve(h, "rebase", WMV, x), x)
            if len(d) == 0:
                return None, f"no comparable rebase/sampling points on {sub}"
            gains[sub] = -float(d.mean())
        return gains["hard"] > gains["easy"], (f"gain easy {100 * gains['easy']:+.2f}pp, "
                                               f"hard {100 * gains['hard']:+.2f}pp")
    return _combine(6, _per_unit(s_sub, check),
                    "weighted majority: REBASE gain = sampling error (log-x interpolated at REBASE's "
                    "FLOPs) minus REBASE error, mean over comparable points, per subset; holds when "
                    "gain on hard > gain on easy for every model")


def evaluate_claims(df: pd.DataFrame, x: str = "policy_flops") -> pd.DataFrame:
    """Evaluate the six claims on a raw metrics table (as load_metrics returns it)."""
    s = seed_summary(df, x=x)
    s_all = s[s["subset"] == "all"]
    rows = [_claim1(s_all, x), _claim2(s_all), _claim34(s_all, x, 3, "rebase"),
            _claim34(s_all, x, 4, "mcts"), _claim5(s_all, x), _claim6(s, x)]
    return pd.DataFrame(rows, columns=COLUMNS)


def write_claims(claims: pd.DataFrame, path: PathLike) -> None:
    atomic_write_csv(claims, path)
