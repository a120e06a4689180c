"""Claims scorecard (docs/design.md, "Claims scorecard"): each of the paper's claims tested on a run, with a
verdict that separates an effect from noise and from a broken verifier.

Every compared quantity (a difference in error, a gain per doubling, a fitted slope, a FLOPs ratio) is computed on
the per-problem outcomes and re-computed on a paired bootstrap over problems and seeds (evaluation.resampling); its
95% interval decides:
  holds         the interval lies on the side of zero the paper claims;
  fails         it lies on the other side;
  inconclusive  it contains zero (or, for claim 9, lies neither inside nor outside the tolerance);
  cannot_check  the run lacks what the claim needs, or the claim rests on the PRM and the PRM's within-problem AUC
                on the run's own sampled candidates is below `auc_gate` (then the PRM cannot rank, and any verdict
                would measure noise).
A claim is judged per unit (a data set and model, or a data set; claim 9 a data set, model and vote); the row holds
when every checkable unit holds, fails when one fails, and is inconclusive otherwise. `evaluate` returns the units
too, one row each with the estimate and interval that decided it (results/claims_units.csv).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infscale.evaluation.resampling import ProblemBootstrap, interval
from infscale.reporting.report import PathLike, atomic_write_csv, seed_summary
from infscale.reporting.scaling import PAPER_A, PAPER_B, default_budgets

CLAIMS = {
    1: "error decreases with samples and saturates (sampling + majority vote)",
    2: "weighted majority voting is at least as good as majority voting at equal n",
    3: "REBASE reaches a lower error than sampling at equal FLOPs, for each model",
    4: "MCTS is worse than sampling at equal FLOPs",
    5: "the compute-optimal model size grows with the budget (log10 C = a log10 N + b)",
    6: "REBASE's gain over sampling is larger on hard problems (levels 3-5) than on easy ones (1-2)",
    7: "REBASE saturates later than sampling (it still gains where sampling has stopped)",
    8: "a smaller model with REBASE reaches the largest model's best sampling accuracy with fewer FLOPs",
    9: "majority and weighted voting converge to the accuracy their answer distributions predict (Theorems 1-2)",
    10: "REBASE reaches a lower error than beam search at equal FLOPs (not in the paper: Snell et al.'s search)",
}
# How each claim is measured and decided: the `detail` column of its row (str.format fields filled per run).
METHOD = {
    1: ("sampling + majority vote, all problems. Decreases: the error's drop per doubling of n over the first two "
        "doublings is > 0. Saturates: {f} x that early gain minus the last doubling's gain is > 0. Both 95% "
        "intervals (paired bootstrap over problems and seeds) above zero: holds; either below: fails; a flat curve "
        "is inconclusive, not holds"),
    2: ("sampling, all problems: mean over budgets n > 1 of weighted-majority error minus majority error; interval "
        "below zero: holds, above: fails"),
    34: ("weighted majority, all problems: {strategy}'s error minus sampling's error interpolated (log10 FLOPs) at "
         "{strategy}'s FLOPs, over {strategy}'s points inside sampling's FLOPs range; interval {side} zero: holds"),
    5: ("sampling + weighted majority, all problems, per data set: on a 12-point log grid of FLOPs, kept where at "
        "least two model sizes have a measured point, the best model (lowest envelope error, ties to the smaller); "
        "log10 N_opt = alpha log10 C + beta fitted; alpha's interval above zero: holds (a = 1/alpha, "
        "b = -beta/alpha)"),
    6: ("weighted majority: REBASE's gain = sampling's error interpolated at REBASE's FLOPs minus REBASE's, mean "
        "over comparable points, per subset; hard - easy interval above zero: holds"),
    7: ("weighted majority, all problems: the error's drop per doubling over the last doubling of n both strategies "
        "ran; REBASE's minus sampling's above zero: holds (REBASE still gains where sampling has saturated)"),
    8: ("weighted majority, all problems, per data set: the largest model's lowest sampling error is the target; "
        "the FLOPs the next smaller model with REBASE needs to reach it (log-linear between measured points, never "
        "reached = 0x); log2 of the largest's FLOPs over those above zero: holds"),
    9: ("sampling, per model and vote: the answer the vote converges to (Theorem 1: the mode of the answer "
        "distribution; Theorem 2: the answer of largest probability x mean weight) predicted from the first half of "
        "each problem's candidates, against the vote measured on the other half; holds when the interval of "
        "measured - predicted accuracy lies within +/-{points:.0f} points, fails when it lies outside"),
    10: ("weighted majority, all problems: REBASE's error minus beam search's interpolated (log10 FLOPs) at REBASE's "
         "FLOPs, over REBASE's points inside beam search's FLOPs range; when none is (e.g. one beam search budget), "
         "against the beam search point of the nearest FLOPs not lower than REBASE's (beam search never spends "
         "less); interval below zero: holds"),
}
NEEDS_VERIFIER = (2, 3, 4, 6, 7, 8, 10)
COLUMNS = ["claim_id", "claim", "verdict", "units", "measured", "detail"]
UNIT_COLUMNS = ["claim_id", "dataset", "model", "aggregation", "verdict", "quantity", "estimate", "low", "high",
                "measured"]
WMV = "weighted_majority"
VERDICTS = ("holds", "fails", "inconclusive", "cannot_check")


@dataclass(frozen=True)
class Settings:
    x: str = "policy_flops"
    auc_gate: float = 0.6  # the PRM's within-problem AUC below which PRM-based claims cannot be checked
    saturation_fraction: float = 0.25  # claim 1: the last doubling gains less than this share of the early gain
    theorem_tolerance: float = 0.05  # claim 9: |measured - predicted accuracy| within 5 points
    draws: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Unit:
    """One unit's result: verdict, the text with the numbers behind it, and the quantity that decided the verdict
    with its estimate and 95% interval (NaN where the unit could not be checked)."""
    verdict: str
    measured: str
    quantity: str = ""
    estimate: float = math.nan
    low: float = math.nan
    high: float = math.nan


def _decided(verdict: str, measured: str, quantity: str, ci: tuple) -> Unit:
    """A checked unit: `ci` is (estimate, low, high, text) as _ci returns it."""
    est, lo, hi, _ = ci
    return Unit(verdict, measured, quantity, float(est), float(lo), float(hi))


def _pp(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{100 * v:+.2f}pp"


def _times(v: float) -> str:
    return "n/a" if np.isnan(v) else f"{v:.2f}x"


def _ci(values: np.ndarray, fmt: Callable[[float], str] = _pp) -> tuple[float, float, float, str]:
    est, lo, hi = interval(values)
    return est, lo, hi, f"{fmt(est)} [{fmt(lo)}, {fmt(hi)}]"


def sign_verdict(lo: float, hi: float, positive: bool) -> str:
    """holds when the interval lies above zero (`positive`) or below it; fails on the other side."""
    if np.isnan(lo) or np.isnan(hi):
        return "inconclusive"
    if positive:
        return "holds" if lo > 0 else "fails" if hi < 0 else "inconclusive"
    return "holds" if hi < 0 else "fails" if lo > 0 else "inconclusive"


def combine(units: dict[str, Unit]) -> str:
    checked = [u.verdict for u in units.values() if u.verdict != "cannot_check"]
    if not checked:
        return "cannot_check"
    if "fails" in checked:
        return "fails"
    return "holds" if all(v == "holds" for v in checked) else "inconclusive"


def unit_summary(verdicts) -> str:
    """How many units each verdict has, e.g. "holds 2/3, inconclusive 1/3" ("no unit" when there is none)."""
    verdicts = list(verdicts)
    counts = [(v, verdicts.count(v)) for v in VERDICTS if v in verdicts]
    return ", ".join(f"{v} {k}/{len(verdicts)}" for v, k in counts) or "no unit"


def _row(cid: int, units: dict[str, Unit], detail: str, empty: str) -> dict[str, object]:
    """A claim's row: the verdict over its units and each unit's numbers, or `empty` (why it has no unit); the
    units themselves under "unit_results" (evaluate puts them in their own table)."""
    measured = "; ".join(f"{k}: {u.verdict}, {u.measured}" for k, u in units.items())
    row = dict(zip(COLUMNS, (cid, CLAIMS[cid], combine(units), unit_summary(u.verdict for u in units.values()),
                             measured or empty, detail)))
    return {**row, "unit_results": units}


class Evidence:
    """The bootstrap, FLOPs per point and verifier AUC of a run: what every claim reads."""

    def __init__(self, metrics: pd.DataFrame, problems: pd.DataFrame, settings: Settings):
        self.s = settings
        self.summary = seed_summary(metrics, x=settings.x)
        self.boot = ProblemBootstrap(problems, draws=settings.draws, seed=settings.seed)
        self.params = self.summary.groupby(["dataset", "model"])["params"].first().to_dict()
        self.auc = self._auc(metrics)

    @staticmethod
    def _auc(metrics: pd.DataFrame) -> dict[tuple[str, str], float]:
        if "prm_auc" not in metrics.columns:
            return {}
        s = metrics[(metrics["strategy"] == "sampling") & (metrics["subset"] == "all")]
        out = {}
        for (ds, m), g in s.groupby(["dataset", "model"]):
            top = g[g["n"] == g["n"].max()]
            out[(ds, m)] = float(top["prm_auc"].mean())
        return out

    def units(self, strategy: str) -> list[tuple[str, str]]:
        s = self.summary[self.summary["strategy"] == strategy]
        return sorted(set(zip(s["dataset"], s["model"])))

    def gate(self, dataset: str, *models: str) -> Unit | None:
        """cannot_check when a model's PRM AUC is below the gate (or unknown)."""
        for m in models:
            auc = self.auc.get((dataset, m), math.nan)
            if not auc >= self.s.auc_gate:
                return Unit("cannot_check", f"PRM within-problem AUC {auc:.2f} < {self.s.auc_gate} on {m}'s "
                                            "sampled candidates: the verifier cannot rank them")
        return None

    def auc_text(self, dataset: str, *models: str) -> str:
        return ", ".join(f"AUC {self.auc.get((dataset, m), math.nan):.2f}" for m in models)

    def flops(self, dataset: str, model: str, strategy: str, aggregation: str, subset: str) -> pd.Series:
        """FLOPs per n (float: seed_summary averages them over seeds)."""
        s = self.summary
        c = s[(s["dataset"] == dataset) & (s["model"] == model) & (s["strategy"] == strategy)
              & (s["aggregation"] == aggregation) & (s["subset"] == subset)]
        return c.set_index("n")[self.s.x]

    def curve(self, dataset: str, model: str, strategy: str, aggregation: str, subset: str = "all"):
        """(n, FLOPs per n, errors (1 + draws, len(n))) restricted to budgets with FLOPs."""
        ns, err = self.boot.curve(dataset, model, strategy, aggregation, subset)
        fl = self.flops(dataset, model, strategy, aggregation, subset)
        keep = np.isin(ns, fl.index)
        ns, err = ns[keep], err[:, keep]
        return ns, fl.reindex(ns).to_numpy(), err


def equal_flops_difference(base_x: np.ndarray, base_err: np.ndarray, other_x: np.ndarray,
                           other_err: np.ndarray) -> np.ndarray | None:
    """Per draw: mean over `other`'s points inside base's FLOPs range of other's error minus base's error
    interpolated linearly in log10 FLOPs (no extrapolation); None when no point is inside (or base has < 2)."""
    if len(base_x) < 2:
        return None
    order = np.argsort(base_x)
    bx, be = np.log10(base_x[order]), base_err[:, order]
    ox = np.log10(other_x)
    inside = (ox >= bx[0]) & (ox <= bx[-1])
    if not inside.any():
        return None
    interp = np.vstack([np.interp(ox[inside], bx, row) for row in be])
    return (other_err[:, inside] - interp).mean(axis=1)


def nearest_not_lower_difference(base_x: np.ndarray, base_err: np.ndarray, other_x: np.ndarray,
                                 other_err: np.ndarray) -> np.ndarray | None:
    """Per draw: mean over `other`'s points of other's error minus base's error at the base point of the lowest
    FLOPs >= the other point's (base never spends less); None when no other point has one."""
    pairs = []
    for j, x in enumerate(other_x):
        above = np.nonzero(base_x >= x * (1 - 1e-9))[0]
        if len(above):
            pairs.append((j, above[np.argmin(base_x[above])]))
    if not pairs:
        return None
    o, b = (np.array(v) for v in zip(*pairs))
    return (other_err[:, o] - base_err[:, b]).mean(axis=1)


def _gain_per_doubling(ns: np.ndarray, err: np.ndarray, i: int, j: int) -> np.ndarray:
    return (err[:, i] - err[:, j]) / np.log2(ns[j] / ns[i])


# ------------------------------------------------------------------------------------------------ the claims


def claim1(ev: Evidence) -> dict[str, object]:
    f = ev.s.saturation_fraction
    units = {}
    for ds, m in ev.units("sampling"):
        ns, _, err = ev.curve(ds, m, "sampling", "majority")
        if len(ns) < 3:
            units[f"{ds}/{m}"] = Unit("cannot_check", f"{len(ns)} sampling budgets, need 3")
            continue
        early = _gain_per_doubling(ns, err, 0, 2)
        late = _gain_per_doubling(ns, err, len(ns) - 2, len(ns) - 1)
        early_ci, saturation_ci = _ci(early), _ci(f * early - late)
        parts = [sign_verdict(*early_ci[1:3], True), sign_verdict(*saturation_ci[1:3], True)]
        verdict = "fails" if "fails" in parts else "holds" if parts == ["holds", "holds"] else "inconclusive"
        # the unit's number is the part that decided it: the early gain when it is not shown, else the saturation
        decides_early = parts[0] != "holds" and (parts[0] == "fails" or parts[1] != "fails")
        quantity = ("error drop per doubling of n, first two doublings" if decides_early
                    else f"{f} x early drop per doubling - last doubling's drop")
        units[f"{ds}/{m}"] = _decided(verdict, f"gain/doubling n={ns[0]}->{ns[2]} {early_ci[3]}, last n={ns[-2]}->"
                                               f"{ns[-1]} {_pp(late[0])}; {f} x early - last {saturation_ci[3]}",
                                      quantity, early_ci if decides_early else saturation_ci)
    return _row(1, units, METHOD[1].format(f=f), "no sampling rows in the metrics")


def claim2(ev: Evidence) -> dict[str, object]:
    units = {}
    for ds, m in ev.units("sampling"):
        if (g := ev.gate(ds, m)) is not None:
            units[f"{ds}/{m}"] = g
            continue
        ns, _, mv = ev.curve(ds, m, "sampling", "majority")
        ns_w, _, wmv = ev.curve(ds, m, "sampling", WMV)
        keep = ns > 1
        if not keep.any() or not np.array_equal(ns, ns_w):
            units[f"{ds}/{m}"] = Unit("cannot_check", "no sampling budget n > 1 under both votes")
            continue
        d = (wmv[:, keep] - mv[:, keep]).mean(axis=1)
        ci = _ci(d)
        units[f"{ds}/{m}"] = _decided(sign_verdict(*ci[1:3], False),
                                      f"mean WMV - MV error over n > 1 {ci[3]} ({ev.auc_text(ds, m)})",
                                      "weighted majority - majority error, mean over n > 1", ci)
    return _row(2, units, METHOD[2], "no sampling rows in the metrics")


def _versus_sampling(ev: Evidence, strategy: str, subset: str = "all") -> dict[str, Unit | np.ndarray]:
    """Per unit, the per-draw equal-FLOPs difference strategy - sampling (WMV), or a Unit saying why not."""
    out: dict[str, Unit | np.ndarray] = {}
    for ds, m in ev.units(strategy):
        if (g := ev.gate(ds, m)) is not None:
            out[f"{ds}/{m}"] = g
            continue
        _, bx, be = ev.curve(ds, m, "sampling", WMV, subset)
        _, ox, oe = ev.curve(ds, m, strategy, WMV, subset)
        d = equal_flops_difference(bx, be, ox, oe)
        out[f"{ds}/{m}"] = d if d is not None else Unit(
            "cannot_check", f"no {strategy} point inside sampling's FLOPs range ({subset} problems)")
    return out


def claim34(ev: Evidence, cid: int, strategy: str) -> dict[str, object]:
    better = strategy == "rebase"
    units = {}
    for key, d in _versus_sampling(ev, strategy).items():
        if isinstance(d, Unit):
            units[key] = d
            continue
        ci = _ci(d)
        units[key] = _decided(sign_verdict(*ci[1:3], not better), f"mean {strategy} - sampling error at equal FLOPs "
                                                                  f"{ci[3]} ({ev.auc_text(*key.split('/'))})",
                              f"{strategy} - sampling error at equal FLOPs (weighted majority)", ci)
    detail = METHOD[34].format(strategy=strategy, side="below" if better else "above")
    return _row(cid, units, detail, f"no {strategy} rows in the metrics")


def claim5(ev: Evidence) -> dict[str, object]:
    units = {}
    for ds in sorted(ev.summary["dataset"].unique()):
        models = [m for d, m in ev.units("sampling") if d == ds]
        if len(models) < 2:
            units[ds] = Unit("cannot_check", f"{len(models)} model(s) with sampling, need 2")
            continue
        curves = {m: ev.curve(ds, m, "sampling", WMV) for m in models}
        budgets = default_budgets(np.concatenate([x for _, x, _ in curves.values()]))
        # only budgets where at least two model sizes have a measured point (else the smallest wins by default)
        reach = np.array([[x.min() <= c * (1 + 1e-9) for c in budgets] for _, x, _ in curves.values()])
        budgets = budgets[reach.sum(axis=0) >= 2]
        if len(budgets) < 2:
            units[ds] = Unit("cannot_check", "fewer than 2 budgets where two model sizes are measured")
            continue
        sizes = np.array([float(ev.params[(ds, m)]) for m in models])
        env = []
        for m in models:  # running best error at <= C FLOPs, per draw
            _, x, e = curves[m]
            order = np.argsort(x)
            best = np.minimum.accumulate(e[:, order], axis=1)
            idx = np.searchsorted(x[order], budgets * (1 + 1e-9), side="right") - 1
            env.append(np.where(idx >= 0, best[:, np.clip(idx, 0, None)], np.inf))
        env = np.stack(env)  # (models, draws + 1, budgets)
        # the best model per budget: lowest error, ties to the smaller model
        key = env + 1e-12 * (np.argsort(np.argsort(sizes)))[:, None, None]
        n_opt = sizes[np.argmin(key, axis=0)]  # (draws + 1, budgets)
        lc, ln = np.log10(budgets), np.log10(n_opt)
        lc_c = lc - lc.mean()
        alpha = (ln - ln.mean(axis=1, keepdims=True)) @ lc_c / (lc_c @ lc_c)  # slope of log N on log C
        beta = ln.mean(axis=1) - alpha * lc.mean()
        rising = np.where(alpha > 0, alpha, np.nan)  # a and b only for a rising N_opt
        a, b = 1 / rising, -beta / rising
        alpha_ci = _ci(alpha, lambda v: f"{v:.3f}")
        _, lo, hi, atxt = alpha_ci
        fmt = lambda v: "n/a" if not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
        _, _, _, a_txt = _ci(a, fmt)
        _, _, _, b_txt = _ci(b, fmt)
        path = "->".join(f"{p:.3g}" for p in dict.fromkeys(n_opt[0]))
        units[ds] = _decided(sign_verdict(lo, hi, True),
                             f"slope of log10 N_opt on log10 C {atxt}; a={a_txt}, b={b_txt} (paper a={PAPER_A}, "
                             f"b={PAPER_B}); N_opt over {len(budgets)} budgets {path}",
                             "slope of log10 N_opt on log10 C", alpha_ci)
    return _row(5, units, METHOD[5], "no sampling rows in the metrics")


def claim6(ev: Evidence) -> dict[str, object]:
    if not set(ev.summary["subset"]) >= {"easy", "hard"}:
        return _row(6, {}, METHOD[6], "no easy/hard subsets (a data set without difficulty levels)")
    easy, hard = _versus_sampling(ev, "rebase", "easy"), _versus_sampling(ev, "rebase", "hard")
    units = {}
    for key in sorted(set(easy) & set(hard)):
        if isinstance(easy[key], Unit) or isinstance(hard[key], Unit):
            units[key] = easy[key] if isinstance(easy[key], Unit) else hard[key]
            continue
        gain_easy, gain_hard = -easy[key], -hard[key]
        ci = _ci(gain_hard - gain_easy)
        units[key] = _decided(sign_verdict(*ci[1:3], True), f"gain easy {_pp(gain_easy[0])}, hard "
                                                            f"{_pp(gain_hard[0])}, hard - easy {ci[3]} "
                                                            f"({ev.auc_text(*key.split('/'))})",
                              "REBASE's gain over sampling on hard - on easy problems", ci)
    return _row(6, units, METHOD[6], "no rebase rows in the metrics")


def claim7(ev: Evidence) -> dict[str, object]:
    units = {}
    for ds, m in ev.units("rebase"):
        if (g := ev.gate(ds, m)) is not None:
            units[f"{ds}/{m}"] = g
            continue
        ns_s, _, es = ev.curve(ds, m, "sampling", WMV)
        ns_r, _, er = ev.curve(ds, m, "rebase", WMV)
        common = sorted(set(ns_s) & set(ns_r))
        if len(common) < 2:
            units[f"{ds}/{m}"] = Unit("cannot_check", "fewer than 2 budgets shared by sampling and REBASE")
            continue
        n1, n2 = common[-2], common[-1]
        i_s, i_r = {n: i for i, n in enumerate(ns_s)}, {n: i for i, n in enumerate(ns_r)}
        g_s = _gain_per_doubling(ns_s, es, i_s[n1], i_s[n2])
        g_r = _gain_per_doubling(ns_r, er, i_r[n1], i_r[n2])
        ci = _ci(g_r - g_s)
        units[f"{ds}/{m}"] = _decided(sign_verdict(*ci[1:3], True),
                                      f"gain/doubling n={n1}->{n2}: REBASE {_pp(g_r[0])}, sampling {_pp(g_s[0])}, "
                                      f"difference {ci[3]}; error at n={n2}: REBASE {100 * er[0, i_r[n2]]:.1f}%, "
                                      f"sampling {100 * es[0, i_s[n2]]:.1f}% ({ev.auc_text(ds, m)})",
                                      "REBASE's - sampling's error drop per doubling, last doubling", ci)
    return _row(7, units, METHOD[7], "no rebase rows in the metrics")


def _flops_to_reach(x: np.ndarray, err: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per draw, the FLOPs at which a curve first reaches error <= target (log-linear between the two points
    around the crossing: the one before has a higher error); +inf when it never does."""
    order = np.argsort(x)
    x, err = np.log10(x[order]), err[:, order]
    out = np.full(err.shape[0], np.inf)
    for b in range(err.shape[0]):
        hit = np.nonzero(err[b] <= target[b] + 1e-12)[0]
        if len(hit) == 0:
            continue
        k = hit[0]
        if k == 0:
            out[b] = 10 ** x[k]
        else:
            t = (err[b, k - 1] - target[b]) / (err[b, k - 1] - err[b, k])
            out[b] = 10 ** (x[k - 1] + t * (x[k] - x[k - 1]))
    return out


def claim8(ev: Evidence) -> dict[str, object]:
    units = {}
    for ds in sorted(ev.summary["dataset"].unique()):
        sampled = [m for d, m in ev.units("sampling") if d == ds]
        searched = [m for d, m in ev.units("rebase") if d == ds]
        if not sampled or not searched:
            continue
        large = max(sampled, key=lambda m: ev.params[(ds, m)])
        smaller = [m for m in searched if ev.params[(ds, m)] < ev.params[(ds, large)]]
        if not smaller:
            units[ds] = Unit("cannot_check", f"no model smaller than {large} ran REBASE")
            continue
        small = max(smaller, key=lambda m: ev.params[(ds, m)])
        if (g := ev.gate(ds, small, large)) is not None:
            units[ds] = g
            continue
        _, lx, le = ev.curve(ds, large, "sampling", WMV)
        _, sx, se = ev.curve(ds, small, "rebase", WMV)
        best = np.argmin(le + 1e-12 * np.argsort(np.argsort(lx)), axis=1)  # ties: the cheaper point
        target, large_flops = le[np.arange(len(best)), best], lx[best]
        with np.errstate(divide="ignore"):
            ratio = np.log2(large_flops / _flops_to_reach(sx, se, target))
        ci = _ci(ratio, lambda v: "never reached" if v == -np.inf else _times(2 ** v))
        units[ds] = _decided(sign_verdict(*ci[1:3], True),
                             f"{small} REBASE vs {large}'s best sampling error {100 * target[0]:.1f}%: FLOPs saved "
                             f"{ci[3]} (paper: about 2x, Llemma-7B vs 34B; {ev.auc_text(ds, small, large)})",
                             f"log2 of {large}'s FLOPs over {small}'s with REBASE at {large}'s best sampling error "
                             "(-inf: never reached)", ci)
    return _row(8, units, METHOD[8], "no data set with sampling and REBASE rows")


def claim9(ev: Evidence) -> dict[str, object]:
    tol = ev.s.theorem_tolerance
    units = {}
    for ds, m in ev.units("sampling"):
        for agg in ("majority", WMV):
            if not ev.boot.has(ds, m, "sampling", agg, "limit_predicted"):
                continue
            ns, pred = ev.boot.curve(ds, m, "sampling", agg, kind="limit_predicted")
            _, meas = ev.boot.curve(ds, m, "sampling", agg, kind="half_measured")
            d = (1 - meas[:, 0]) - (1 - pred[:, 0])  # accuracy measured - predicted
            ci = _ci(d)
            _, lo, hi, txt = ci
            verdict = ("holds" if -tol <= lo and hi <= tol else "fails" if lo > tol or hi < -tol
                       else "inconclusive")
            units[f"{ds}/{m}/{agg}"] = _decided(verdict, f"predicted {100 * (1 - pred[0, 0]):.1f}%, measured "
                                                         f"{100 * (1 - meas[0, 0]):.1f}% (n={ns[0]} each), "
                                                         f"measured - predicted {txt}",
                                                "measured - predicted accuracy of the vote's limit", ci)
    return _row(9, units, METHOD[9].format(points=100 * tol), "no sampling run with at least 4 candidates")


def claim10(ev: Evidence) -> dict[str, object]:
    units = {}
    searched = set(ev.units("rebase"))
    for ds, m in ev.units("beam_search"):
        if (ds, m) not in searched:
            units[f"{ds}/{m}"] = Unit("cannot_check", "no rebase rows for this model")
            continue
        if (g := ev.gate(ds, m)) is not None:
            units[f"{ds}/{m}"] = g
            continue
        _, bx, be = ev.curve(ds, m, "beam_search", WMV)
        _, rx, rerr = ev.curve(ds, m, "rebase", WMV)
        d, how = equal_flops_difference(bx, be, rx, rerr), "interpolated"
        if d is None:
            d, how = nearest_not_lower_difference(bx, be, rx, rerr), "at the nearest not-lower beam search FLOPs"
        if d is None:
            units[f"{ds}/{m}"] = Unit("cannot_check", "no rebase point at or below beam search's FLOPs")
            continue
        ci = _ci(d)
        units[f"{ds}/{m}"] = _decided(sign_verdict(*ci[1:3], False), f"mean rebase - beam_search error at equal "
                                                                     f"FLOPs {ci[3]} ({how}; {ev.auc_text(ds, m)})",
                                      "rebase - beam_search error at equal FLOPs (weighted majority)", ci)
    return _row(10, units, METHOD[10], "no beam_search rows in the metrics")


def evaluate(metrics: pd.DataFrame, problems: pd.DataFrame, settings: Settings | None = None,
             **overrides) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims, units) of a run: a row per claim (COLUMNS) and a row per claim x unit (UNIT_COLUMNS: its data set,
    model and vote where the unit has them, verdict, the quantity that decided it with estimate and interval).
    `metrics` as load_metrics returns them, `problems` the per-problem outcomes."""
    s = settings or Settings(**overrides)
    ev = Evidence(metrics, problems, s)
    rows = [claim1(ev), claim2(ev), claim34(ev, 3, "rebase"), claim34(ev, 4, "mcts"), claim5(ev), claim6(ev),
            claim7(ev), claim8(ev), claim9(ev), claim10(ev)]
    units = [unit_row(row["claim_id"], key, u) for row in rows for key, u in row["unit_results"].items()]
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(units, columns=UNIT_COLUMNS)


def unit_row(cid: int, key: str, unit: Unit) -> dict[str, object]:
    """A unit's row; its key is "dataset", "dataset/model" or "dataset/model/aggregation"."""
    parts = key.split("/")
    names = dict(zip(("dataset", "model", "aggregation"), parts + [""] * (3 - len(parts))))
    return {"claim_id": cid, **names, "verdict": unit.verdict, "quantity": unit.quantity, "estimate": unit.estimate,
            "low": unit.low, "high": unit.high, "measured": unit.measured}


def evaluate_claims(metrics: pd.DataFrame, problems: pd.DataFrame, settings: Settings | None = None,
                    **overrides) -> pd.DataFrame:
    """The claims of a run (CLAIMS), without their units (evaluate)."""
    return evaluate(metrics, problems, settings, **overrides)[0]


def load_problems(paths) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"id": str}) for p in paths]
    if not frames:
        raise ValueError("load_problems: no per-problem files given")
    return pd.concat(frames, ignore_index=True)


def write_claims(claims: pd.DataFrame, path: PathLike) -> None:
    atomic_write_csv(claims, path)
