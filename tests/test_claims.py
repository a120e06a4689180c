"""The claims scorecard on constructed per-problem outcomes: every verdict path (holds, fails, inconclusive,
cannot_check) of every claim, mixed verdicts across models, and the verifier gate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infscale.evaluation.resampling import ProblemBootstrap, interval
from infscale.reporting.claims import VERDICTS, Settings, Unit, combine, evaluate_claims, sign_verdict

PARAMS = {"tiny": 100_000, "small": 300_000, "base": 1_000_000}
# (accuracy of one sample, accuracy it saturates at): small models are better per FLOP at small budgets,
# large ones at large budgets, so the compute-optimal size grows.
CURVES = {"tiny": (0.40, 0.60), "small": (0.35, 0.72), "base": (0.30, 0.78)}
SAMPLING, REBASE, MCTS = [1, 2, 4, 8, 16, 32], [4, 8, 16], [8, 16]
P, SEEDS = 1000, (0, 1)
LEVELS = np.arange(P) % 5 + 1
HARD = LEVELS >= 3


def sampling_accuracy(model, n):
    a1, ainf = CURVES[model]
    return ainf - (ainf - a1) / n


def default_effects():
    return dict(wmv=+0.05, rebase=+0.08, rebase_where="hard", rebase_growth=0.06, mcts=-0.10, auc=0.9,
                theorem_gap=0.0, flat_sampling=False)


def accuracy(model, strategy, agg, n, effects):
    """Accuracy per problem (an array over problems) of one curve point."""
    e = effects[model] if model in effects else effects
    if strategy == "greedy":
        base = np.full(P, CURVES[model][0] + 0.05)
    else:
        base = np.full(P, CURVES[model][0] if e["flat_sampling"] else sampling_accuracy(model, n))
    if strategy != "greedy" and agg == "weighted_majority" and n > 1:
        base = base + e["wmv"]
    if strategy == "rebase":
        bonus = e["rebase"] + e["rebase_growth"] * np.log2(n / 4)
        # the full bonus where REBASE helps most, 30% of it elsewhere
        where = {"hard": HARD, "easy": ~HARD}[e["rebase_where"]]
        base = base + np.where(where, bonus, 0.3 * bonus)
    if strategy == "mcts":
        base = base + e["mcts"]
    return np.clip(base, 0, 1)


def build(effects=None, models=("tiny", "small", "base"), strategies=("greedy", "sampling", "rebase", "mcts")):
    """(metrics, problems) of a synthetic run. Outcomes use common random numbers per (problem, seed), as a
    real run does (a hard problem is hard for every strategy): curves differ only where their accuracy does."""
    effects = {**default_effects(), **(effects or {})}
    rng = np.random.default_rng(7)
    u = rng.random((P, len(SEEDS)))
    budgets = {"greedy": [1], "sampling": SAMPLING, "rebase": REBASE, "mcts": MCTS}
    cost = {"greedy": 1.0, "sampling": 1.0, "rebase": 1.1, "mcts": 1.2}
    ids, levels = np.array([f"p{p}" for p in range(P)]), LEVELS.astype(int)
    problems, metrics = [], []

    def outcomes(m, s, kind, n, seed, agg, correct):
        problems.append(pd.DataFrame({"dataset": "toy", "model": m, "strategy": s, "seed": seed, "kind": kind,
                                      "n": n, "aggregation": agg, "id": ids, "level": levels, "correct": correct}))

    for m in models:
        e = effects[m] if m in effects else effects
        for s in strategies:
            for n in budgets[s]:
                flops = 2.0 * PARAMS[m] * 100 * n * cost[s]
                for si, seed in enumerate(SEEDS):
                    for agg in ("majority", "weighted_majority", "best_of_n"):
                        correct = (u[:, si] < accuracy(m, s, agg, n, effects)).astype(int)
                        outcomes(m, s, "budget", n, seed, agg, correct)
                        for subset, mask in (("all", np.ones(P, bool)), ("easy", ~HARD), ("hard", HARD)):
                            acc = float(correct[mask].mean())
                            metrics.append(dict(dataset="toy", model=m, strategy=s, n=n, seed=seed,
                                                aggregation=agg, subset=subset, n_problems=int(mask.sum()),
                                                accuracy=acc, error=1 - acc, params=PARAMS[m],
                                                policy_prefill_flops=0.1 * flops, policy_decode_flops=0.9 * flops,
                                                prm_flops=0.5 * flops, policy_flops=flops, total_flops=1.5 * flops,
                                                generated_tokens=100 * n, invalid_share=0.0,
                                                prm_auc=e["auc"] if s != "greedy" else np.nan))
            if s == "sampling":
                half = max(budgets[s]) // 2
                for si, seed in enumerate(SEEDS):
                    for agg in ("majority", "weighted_majority"):
                        acc = accuracy(m, s, agg, half, effects)
                        outcomes(m, s, "limit_predicted", half, seed, agg, (u[:, si] < acc).astype(int))
                        outcomes(m, s, "half_measured", half, seed, agg, (u[:, si] < acc + e["theorem_gap"]).astype(int))
    return pd.DataFrame(metrics), pd.concat(problems, ignore_index=True)


def verdicts(effects=None, **kw):
    metrics, problems = build(effects, **kw)
    claims = evaluate_claims(metrics, problems, Settings(draws=200))
    assert set(claims["verdict"]) <= set(VERDICTS)
    return dict(zip(claims["claim_id"], claims["verdict"])), claims.set_index("claim_id")


@pytest.fixture(scope="module")
def holding():
    return verdicts()


def test_every_claim_holds_when_the_effects_are_there(holding):
    v, claims = holding
    assert v == {i: "holds" for i in range(1, 10)}
    # every verdict carries its interval
    assert all("[" in claims.loc[i, "measured"] for i in range(1, 10))


def test_claims_fail_when_the_effects_are_reversed():
    v, _ = verdicts(dict(wmv=-0.08, rebase=-0.15, rebase_growth=-0.05, mcts=+0.15, theorem_gap=0.2))
    assert v[2] == v[3] == v[4] == v[9] == "fails"
    assert v[7] == "fails"  # REBASE gains less than sampling at its last doubling
    assert v[8] == "fails"  # the smaller model with REBASE never reaches the largest's sampling accuracy
    v, _ = verdicts(dict(rebase_where="easy"))
    assert v[6] == "fails" and v[3] == "holds"  # REBASE helps, but more on easy problems


def test_a_flat_curve_is_inconclusive_not_holds():
    v, claims = verdicts(dict(flat_sampling=True, wmv=0.0, theorem_gap=0.05))
    assert v[1] == "inconclusive"  # nothing decreases: the early gain's interval is [0, 0]
    assert v[2] == "inconclusive"  # WMV equals MV on every problem
    assert v[9] == "inconclusive"  # a 5-point gap: its interval straddles the +/-5 points tolerance
    assert "measured - predicted" in claims.loc[9, "measured"]


def test_a_verifier_below_the_gate_makes_prm_claims_cannot_check(holding):
    v, claims = verdicts(dict(auc=0.47))
    for cid in (2, 3, 4, 6, 7, 8):
        assert v[cid] == "cannot_check", cid
        assert "AUC 0.47 < 0.6" in claims.loc[cid, "measured"]
    # claims that do not rest on the PRM keep their verdicts
    assert (v[1], v[5], v[9]) == (holding[0][1], holding[0][5], holding[0][9])


def test_one_failing_or_unsure_model_decides_the_row():
    good = default_effects()
    bad = {**good, "wmv": -0.08}
    flat = {**good, "wmv": 0.0}
    v, claims = verdicts({"tiny": good, "small": good, "base": bad})
    assert v[2] == "fails"  # not "holds because two models hold"
    assert "toy/base: fails" in claims.loc[2, "measured"] and "toy/tiny: holds" in claims.loc[2, "measured"]
    v, _ = verdicts({"tiny": good, "small": good, "base": flat})
    assert v[2] == "inconclusive"
    # the gate is per model: one blind verifier leaves the others checked
    v, claims = verdicts({"tiny": good, "small": good, "base": {**good, "auc": 0.5}})
    assert v[2] == "holds" and "toy/base: cannot_check" in claims.loc[2, "measured"]


def test_claims_without_their_strategies_cannot_be_checked():
    v, _ = verdicts(strategies=("greedy", "sampling"))
    assert v[3] == v[4] == v[6] == v[7] == v[8] == "cannot_check"
    assert v[1] == "holds"
    v, _ = verdicts(models=("base",))
    assert v[5] == "cannot_check"  # one model size: no compute-optimal trend


def test_claim5_reports_the_fit_beside_the_papers(holding):
    measured = holding[1].loc[5, "measured"]
    assert "a=" in measured and "paper a=1.19, b=2.03" in measured
    # N_opt grows from tiny to base over the budgets where two sizes are measured
    assert "1e+05" in measured and "1e+06" in measured


def test_equal_flops_comparisons_do_not_extrapolate():
    # REBASE points all beyond sampling's FLOPs range: not comparable, whatever their errors
    metrics, problems = build()
    far = metrics["strategy"] == "rebase"
    for col in ("policy_flops", "total_flops"):
        metrics.loc[far, col] *= 1e6
    claims = evaluate_claims(metrics, problems, Settings(draws=50)).set_index("claim_id")
    assert claims.loc[3, "verdict"] == "cannot_check"
    assert "inside sampling's FLOPs range" in claims.loc[3, "measured"]


def test_sign_verdict_and_combine_boundaries():
    assert sign_verdict(0.01, 0.2, True) == "holds" and sign_verdict(0.0, 0.2, True) == "inconclusive"
    assert sign_verdict(-0.2, -0.01, True) == "fails" and sign_verdict(-0.2, 0.0, True) == "inconclusive"
    assert sign_verdict(-0.2, -0.01, False) == "holds" and sign_verdict(0.01, 0.2, False) == "fails"
    assert sign_verdict(np.nan, 0.1, True) == "inconclusive"
    u = {"holds": Unit("holds", ""), "fails": Unit("fails", ""), "inc": Unit("inconclusive", ""),
         "cc": Unit("cannot_check", "")}
    assert combine({k: u[k] for k in ("holds", "cc")}) == "holds"
    assert combine({k: u[k] for k in ("holds", "inc")}) == "inconclusive"
    assert combine({k: u[k] for k in ("holds", "inc", "fails")}) == "fails"
    assert combine({"cc": u["cc"]}) == combine({}) == "cannot_check"


def test_bootstrap_row_zero_is_the_plain_mean_and_draws_are_paired():
    rows = [dict(dataset="d", model="m", strategy=s, seed=seed, n=1, aggregation="majority", id=f"p{p}", level=1,
                 correct=int(p < k)) for s, k in (("a", 6), ("b", 4)) for seed in (0, 1) for p in range(10)]
    boot = ProblemBootstrap(pd.DataFrame(rows), draws=300, seed=1)
    _, ea = boot.curve("d", "m", "a", "majority")
    _, eb = boot.curve("d", "m", "b", "majority")
    assert ea[0, 0] == pytest.approx(0.4) and eb[0, 0] == pytest.approx(0.6)
    # b is never right where a is wrong: in every paired draw a's error is at most b's
    assert (ea[1:, 0] <= eb[1:, 0] + 1e-12).all() and ea[1:, 0].std() > 0
    est, lo, hi = interval(eb[:, 0] - ea[:, 0])
    assert est == pytest.approx(0.2) and 0 <= lo <= est <= hi and hi > lo


def test_the_numbers_behind_the_verdicts_on_hand_examples():
    from infscale.reporting.claims import _flops_to_reach, _gain_per_doubling, equal_flops_difference

    # gain per doubling: 10 points from n=1 to n=4 is 5 points a doubling
    err = np.array([[0.5, 0.45, 0.40]])
    assert _gain_per_doubling(np.array([1, 2, 4]), err, 0, 2)[0] == pytest.approx(0.05)
    # FLOPs to reach a target: log-linear between the points around the crossing, the first point when it already
    # reaches it, +inf when the curve never does
    x = np.array([1e2, 1e4, 1e6])
    curve = np.array([[0.5, 0.3, 0.1], [0.2, 0.1, 0.0], [0.5, 0.45, 0.4]])
    got = _flops_to_reach(x, curve, np.array([0.2, 0.3, 0.2]))
    assert got[0] == pytest.approx(1e5) and got[1] == pytest.approx(1e2) and got[2] == np.inf
    # equal FLOPs: the other curve's points against the base interpolated in log10 FLOPs; outside the base's range
    # a point is not compared
    base_x, base = np.array([1e2, 1e4]), np.array([[0.4, 0.2]])
    other_x, other = np.array([1e3, 1e5]), np.array([[0.25, 0.0]])
    assert equal_flops_difference(base_x, base, other_x, other)[0] == pytest.approx(0.25 - 0.3)
    assert np.isnan(equal_flops_difference(base_x, base, np.array([1e6]), np.array([[0.1]]))[0])
