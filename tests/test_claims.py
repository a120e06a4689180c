"""The claims scorecard on constructed per-problem outcomes: every verdict path (holds, fails, inconclusive,
cannot_check) of every claim, mixed verdicts across models, and the verifier gate."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from infscale.reporting.claims import (
    METHOD,
    VERDICTS,
    Evidence,
    Settings,
    Unit,
    _ci,
    _flops_to_reach,
    _gain_per_doubling,
    _pp,
    _times,
    claim1,
    claim2,
    claim5,
    claim6,
    claim7,
    claim8,
    claim9,
    claim10,
    claim34,
    combine,
    equal_flops_difference,
    evaluate,
    evaluate_claims,
    load_problems,
    nearest_not_lower_difference,
    sign_verdict,
    unit_summary,
    write_claims,
)

PARAMS = {"tiny": 100_000, "small": 300_000, "base": 1_000_000}
# (accuracy of one sample, accuracy it saturates at): small models are better per FLOP at small budgets,
# large ones at large budgets, so the compute-optimal size grows.
CURVES = {"tiny": (0.40, 0.60), "small": (0.35, 0.72), "base": (0.30, 0.78)}
SAMPLING, REBASE, MCTS, BEAM = [1, 2, 4, 8, 16, 32], [4, 8, 16], [8, 16], [4, 8, 16]
P, SEEDS = 400, (0, 1)
LEVELS = np.arange(P) % 5 + 1
HARD = LEVELS >= 3


def sampling_accuracy(model, n):
    a1, ainf = CURVES[model]
    return ainf - (ainf - a1) / n


def default_effects():
    return dict(wmv=+0.05, rebase=+0.08, rebase_where="hard", rebase_growth=0.06, mcts=-0.10, beam=+0.01, auc=0.9,
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
    if strategy == "beam_search":
        base = base + e["beam"]
    return np.clip(base, 0, 1)


def build(effects=None, models=("tiny", "small", "base"),
          strategies=("greedy", "sampling", "rebase", "mcts", "beam_search")):
    """(metrics, problems) of a synthetic run. Outcomes use common random numbers per (problem, seed), as a
    real run does (a hard problem is hard for every strategy): curves differ only where their accuracy does."""
    effects = {**default_effects(), **(effects or {})}
    rng = np.random.default_rng(7)
    u = rng.random((P, len(SEEDS)))
    budgets = {"greedy": [1], "sampling": SAMPLING, "rebase": REBASE, "mcts": MCTS, "beam_search": BEAM}
    cost = {"greedy": 1.0, "sampling": 1.0, "rebase": 1.1, "mcts": 1.2, "beam_search": 1.05}
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
                    for agg in ("majority", "weighted_majority"):  # the votes the claims read
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


CLAIM_FUNCS = {1: claim1, 2: claim2, 3: lambda ev: claim34(ev, 3, "rebase"), 4: lambda ev: claim34(ev, 4, "mcts"),
               5: claim5, 6: claim6, 7: claim7, 8: claim8, 9: claim9, 10: claim10}


def verdicts(effects=None, cids=None, **kw):
    """(verdict per claim, claims table) of a synthetic run; `cids`: only these claims (all of them by default)."""
    metrics, problems = build(effects, **kw)
    if cids is None:
        claims = evaluate_claims(metrics, problems, Settings(draws=100))
    else:
        ev = Evidence(metrics, problems, Settings(draws=100))
        claims = pd.DataFrame([CLAIM_FUNCS[c](ev) for c in cids])
    assert set(claims["verdict"]) <= set(VERDICTS)
    return dict(zip(claims["claim_id"], claims["verdict"])), claims.set_index("claim_id")


@pytest.fixture(scope="module")
def holding():
    return verdicts()


def test_every_claim_holds_when_the_effects_are_there(holding):
    v, claims = holding
    assert v == {i: "holds" for i in range(1, 11)}
    # every verdict carries its interval; the table's columns are the CSV's
    assert all("[" in claims.loc[i, "measured"] for i in range(1, 11))
    assert list(claims.reset_index().columns) == ["claim_id", "claim", "verdict", "units", "measured", "detail"]


def test_claims_fail_when_the_effects_are_reversed():
    v, _ = verdicts(dict(wmv=-0.08, rebase=-0.15, rebase_growth=-0.05, mcts=+0.15, theorem_gap=0.2),
                    cids=(2, 3, 4, 7, 8, 9, 10), models=("small", "base"))
    assert v[2] == v[3] == v[4] == v[9] == v[10] == "fails"
    assert v[7] == "fails"  # REBASE gains less than sampling at its last doubling
    assert v[8] == "fails"  # the smaller model with REBASE never reaches the largest's sampling accuracy
    v, _ = verdicts(dict(rebase_where="easy"), cids=(3, 6), models=("base",), strategies=("sampling", "rebase"))
    assert v[6] == "fails" and v[3] == "holds"  # REBASE helps, but more on easy problems


def test_a_flat_curve_is_inconclusive_not_holds():
    v, claims = verdicts(dict(flat_sampling=True, wmv=0.0, theorem_gap=0.05), cids=(1, 2, 9), models=("base",),
                         strategies=("sampling",))
    assert v[1] == "inconclusive"  # nothing decreases: the early gain's interval is [0, 0]
    assert v[2] == "inconclusive"  # WMV equals MV on every problem
    assert v[9] == "inconclusive"  # a 5-point gap: its interval straddles the +/-5 points tolerance
    assert "measured - predicted" in claims.loc[9, "measured"]


def test_a_verifier_below_the_gate_makes_prm_claims_cannot_check(holding):
    v, claims = verdicts(dict(auc=0.47))
    for cid in (2, 3, 4, 6, 7, 8, 10):
        assert v[cid] == "cannot_check", cid
        assert "AUC 0.47 < 0.6" in claims.loc[cid, "measured"]
    # claims that do not rest on the PRM keep their verdicts
    assert (v[1], v[5], v[9]) == (holding[0][1], holding[0][5], holding[0][9])


def test_one_failing_or_unsure_model_decides_the_row():
    good = default_effects()
    bad = {**good, "wmv": -0.08}
    flat = {**good, "wmv": 0.0}
    only = dict(cids=(2,), strategies=("sampling",), models=("tiny", "base"))
    v, claims = verdicts({"tiny": good, "base": bad}, **only)
    assert v[2] == "fails"  # not "holds because two models hold"
    assert "toy/base: fails" in claims.loc[2, "measured"] and "toy/tiny: holds" in claims.loc[2, "measured"]
    v, _ = verdicts({"tiny": good, "base": flat}, **only)
    assert v[2] == "inconclusive"
    # the gate is per model: one blind verifier leaves the others checked
    v, claims = verdicts({"tiny": good, "base": {**good, "auc": 0.5}}, **only)
    assert v[2] == "holds" and "toy/base: cannot_check" in claims.loc[2, "measured"]


def test_claims_without_their_strategies_cannot_be_checked():
    v, claims = verdicts(strategies=("greedy", "sampling"))
    assert v[3] == v[4] == v[6] == v[7] == v[8] == v[10] == "cannot_check"
    assert claims.loc[10, "measured"] == "no beam_search rows in the metrics" and claims.loc[10, "detail"] == METHOD[10]
    assert v[1] == "holds"
    # a claim without any unit says why, and still says how it would be measured
    assert claims.loc[3, "measured"] == "no rebase rows in the metrics"
    assert claims.loc[4, "measured"] == "no mcts rows in the metrics"
    assert claims.loc[6, "measured"] == claims.loc[7, "measured"] == "no rebase rows in the metrics"
    assert claims.loc[8, "measured"] == "no data set with sampling and REBASE rows"
    assert claims.loc[7, "detail"] == METHOD[7] and claims.loc[8, "detail"] == METHOD[8]
    v, claims = verdicts(models=("base",), cids=(5, 8), strategies=("sampling", "rebase"))
    assert v[5] == "cannot_check"  # one model size: no compute-optimal trend
    assert claims.loc[5, "measured"] == "toy: cannot_check, 1 model(s) with sampling, need 2"
    # the largest model ran REBASE itself: there is no smaller one to compare
    assert claims.loc[8, "measured"] == "toy: cannot_check, no model smaller than base ran REBASE"


def test_claim5_reports_the_fit_beside_the_papers(holding):
    measured = holding[1].loc[5, "measured"]
    assert "a=" in measured and "paper a=1.19, b=2.03" in measured
    # N_opt grows from tiny to base over the budgets where two sizes are measured
    assert "1e+05" in measured and "1e+06" in measured


def test_equal_flops_comparisons_do_not_extrapolate():
    # REBASE points all beyond sampling's FLOPs range: not comparable, whatever their errors
    metrics, problems = build(models=("base",), strategies=("sampling", "rebase"))
    far = metrics["strategy"] == "rebase"
    for col in ("policy_flops", "total_flops"):
        metrics.loc[far, col] *= 1e6
    row = claim34(Evidence(metrics, problems, Settings(draws=20)), 3, "rebase")
    assert row["verdict"] == "cannot_check"
    assert row["measured"] == "toy/base: cannot_check, no rebase point inside sampling's FLOPs range (all problems)"


def test_sign_verdict_and_combine_boundaries():
    assert sign_verdict(0.01, 0.2, True) == "holds" and sign_verdict(0.0, 0.2, True) == "inconclusive"
    assert sign_verdict(-0.2, -0.01, True) == "fails" and sign_verdict(-0.2, 0.0, True) == "inconclusive"
    assert sign_verdict(-0.2, -0.01, False) == "holds" and sign_verdict(0.01, 0.2, False) == "fails"
    assert sign_verdict(-0.2, 0.0, False) == sign_verdict(0.0, 0.2, False) == "inconclusive"
    # an undefined interval end decides nothing, whatever the other end says
    for lo, hi in ((np.nan, 0.1), (np.nan, -0.1), (0.1, np.nan), (-0.1, np.nan)):
        assert sign_verdict(lo, hi, True) == sign_verdict(lo, hi, False) == "inconclusive"
    u = {"holds": Unit("holds", ""), "fails": Unit("fails", ""), "inc": Unit("inconclusive", ""),
         "cc": Unit("cannot_check", "")}
    assert combine({k: u[k] for k in ("holds", "cc")}) == "holds"
    assert combine({k: u[k] for k in ("holds", "inc")}) == "inconclusive"
    assert combine({k: u[k] for k in ("holds", "inc", "fails")}) == "fails"
    assert combine({"cc": u["cc"]}) == combine({}) == "cannot_check"


def test_the_numbers_behind_the_verdicts_on_hand_examples():
    # gain per doubling: 10 points from n=2 to n=8 (two doublings) is 5 points a doubling
    err = np.array([[0.5, 0.45, 0.40]])
    assert _gain_per_doubling(np.array([2, 4, 8]), err, 0, 2)[0] == pytest.approx(0.05)
    assert _gain_per_doubling(np.array([2, 4, 8]), err, 1, 2)[0] == pytest.approx(0.05)
    # FLOPs to reach a target: log-linear between the points around the crossing, the first point when it already
    # reaches it, +inf when the curve never does (a draw that never does leaves the others alone)
    x = np.array([1e4, 1e2, 1e6])  # any order: sorted by FLOPs
    curve = np.array([[0.5, 0.3, 0.1], [0.5, 0.45, 0.4], [0.2, 0.1, 0.0], [0.9, 0.8, 0.5]])[:, [1, 0, 2]]
    got = _flops_to_reach(x, curve, np.array([0.2, 0.2, 0.3, 0.6]))
    assert got[0] == pytest.approx(1e5) and got[1] == np.inf and got[2] == pytest.approx(1e2)
    # 0.6 is reached 2/3 of the way (in log10 FLOPs) from 1e4 (error 0.8) to 1e6 (0.5)
    assert got[3] == pytest.approx(10 ** (4 + 2 * (0.8 - 0.6) / (0.8 - 0.5)))
    # an error equal to the target reaches it, also within 1e-12 above it (rounding)
    assert _flops_to_reach(np.array([1e2, 1e4]), np.array([[0.5, 0.3]]), np.array([0.3]))[0] == pytest.approx(1e4)
    assert _flops_to_reach(np.array([1e2, 1e4]), np.array([[0.5, 0.3 + 1e-12]]), np.array([0.3]))[0] == \
        pytest.approx(1e4)
    # equal FLOPs: the other curve's points against the base interpolated in log10 FLOPs; outside the base's range
    # a point is not compared; at the range's ends it is
    base_x, base = np.array([1e4, 1e2]), np.array([[0.2, 0.4]])
    other_x, other = np.array([1e3, 1e5]), np.array([[0.25, 0.0]])
    assert equal_flops_difference(base_x, base, other_x, other)[0] == pytest.approx(0.25 - 0.3)
    assert equal_flops_difference(base_x, base, np.array([1e6]), np.array([[0.1]])) is None
    ends = equal_flops_difference(base_x, base, np.array([1e2, 1e4]), np.array([[0.5, 0.5]]))
    assert ends[0] == pytest.approx(((0.5 - 0.4) + (0.5 - 0.2)) / 2)
    # two draws: each draw's own difference
    two = equal_flops_difference(base_x, np.array([[0.2, 0.4], [0.0, 0.2]]), other_x[:1], np.array([[0.25], [0.3]]))
    assert two == pytest.approx([0.25 - 0.3, 0.3 - 0.1])
    # one base point spans no range
    assert equal_flops_difference(base_x[:1], base[:, :1], base_x[:1], base[:, :1]) is None


def test_the_texts_users_read():
    assert _pp(0.05) == "+5.00pp" and _pp(-0.0123) == "-1.23pp" and _pp(0.0) == "+0.00pp"
    assert _pp(np.nan) == _pp(np.inf) == _pp(-np.inf) == "n/a"
    # row 0 is the estimate, the interval is the 2.5th/97.5th percentile of the draws (lower/higher value)
    assert _ci(np.array([0.1, 0.3, 0.0, 0.2])) == (0.1, 0.0, 0.3, "+10.00pp [+0.00pp, +30.00pp]")
    assert _ci(np.array([2.0, 1.0, 3.0]), lambda v: f"{v:.1f}")[3] == "2.0 [1.0, 3.0]"
    assert _times(2.0) == "2.00x" and _times(np.nan) == "n/a"
    # each claim's method, with the run's parameters
    assert "0.5 x that early gain" in claim1(_empty_evidence(saturation_fraction=0.5))["detail"]
    assert claim1(_empty_evidence())["detail"] == METHOD[1].format(f=0.25)
    assert "within +/-10 points" in claim9(_empty_evidence(theorem_tolerance=0.1))["detail"]
    assert "interval below zero: holds" in claim34(_empty_evidence(), 3, "rebase")["detail"]
    assert "interval above zero: holds" in claim34(_empty_evidence(), 4, "mcts")["detail"]
    assert "mcts's error minus sampling's" in claim34(_empty_evidence(), 4, "mcts")["detail"]
    assert "within +/-90 points" in claim9(_empty_evidence(theorem_tolerance=0.9))["detail"]
    # a run without sampling: the claims that read it say so, with their methods
    ev = _empty_evidence()
    for cid, func in ((1, claim1), (2, claim2)):
        row = func(ev)
        assert (row["claim_id"], row["measured"], row["verdict"]) == (cid, "no sampling rows in the metrics",
                                                                      "cannot_check")
    assert claim2(ev)["detail"] == METHOD[2] and claim5(ev)["detail"] == METHOD[5]
    assert claim5(ev)["measured"] == "d: cannot_check, 0 model(s) with sampling, need 2"


# ------------------------------------------------------------------ hand-made runs: every number known in advance

def hand_run(points, params=None, auc=None, levels=(1, 1, 1, 1), dataset="d", x="policy_flops"):
    """(metrics, problems) of a run given point by point: {(model, strategy, aggregation): {n: (flops, correct)}},
    `correct` one 0/1 per problem (one seed), or rows of them per seed; `flops` a number, or {subset: number}.
    A (model, "sampling", aggregation, "limit_predicted" / "half_measured") key gives claim 9's outcomes."""
    params = params or {}
    auc = auc if isinstance(auc, dict) else {}
    metrics, problems = [], []
    ids = [f"q{i}" for i in range(len(levels))]
    subsets = {"all": np.ones(len(levels), bool), "easy": np.isin(levels, (1, 2)), "hard": np.isin(levels, (3, 4, 5))}
    for key, curve in points.items():
        model, strategy, agg, kind = (*key, "budget")[:4]
        for n, (flops, correct) in curve.items():
            correct = np.atleast_2d(np.asarray(correct, int))
            for seed, row in enumerate(correct):
                problems.append(pd.DataFrame({"dataset": dataset, "model": model, "strategy": strategy, "seed": seed,
                                              "kind": kind, "n": n, "aggregation": agg, "id": ids, "level": levels,
                                              "correct": row}))
                if kind != "budget":
                    continue
                for subset, mask in subsets.items():
                    if not mask.any():
                        continue
                    f = flops[subset] if isinstance(flops, dict) else flops
                    metrics.append(dict(dataset=dataset, model=model, strategy=strategy, n=n, seed=seed,
                                        aggregation=agg, subset=subset, error=1 - row[mask].mean(),
                                        params=params.get(model, 1e6), policy_flops=f, total_flops=3 * f,
                                        prm_auc=auc.get(model, 0.9)))
    return pd.DataFrame(metrics), pd.concat(problems, ignore_index=True)


def hand_row(cid, points, draws=0, settings=None, **kw):
    metrics, problems = hand_run(points, **kw)
    return CLAIM_FUNCS[cid](Evidence(metrics, problems, settings or Settings(draws=draws)))


def _empty_evidence(**settings):
    metrics, problems = hand_run({("m", "greedy", "majority"): {1: (1.0, [1, 0, 0, 0])}})
    return Evidence(metrics, problems, Settings(draws=0, **settings))


def frac(k, p=4):
    """k of p problems right (the first k)."""
    return [1] * k + [0] * (p - k)


def same(ok, p=4):
    """every problem right (1) or wrong (0): every bootstrap draw sees the same error."""
    return [ok] * p


def test_claim1_numbers_and_verdicts():
    # errors 1, .75, .5, .5, .25 at n = 2..32: early gain (n=2->8) 25 points a doubling, last (16->32) 25 points
    pts = {("m", "sampling", "majority"): {2 ** (i + 1): (1e3 * 2 ** i, frac(k)) for i, k in enumerate((0, 1, 2, 2, 3))}}
    row = hand_row(1, pts)
    assert row["measured"] == ("d/m: inconclusive, gain/doubling n=2->8 +25.00pp [n/a, n/a], last n=16->32 +25.00pp; "
                               "0.25 x early - last -18.75pp [n/a, n/a]")
    # deterministic curves (every problem alike): the intervals are points, the verdicts follow
    def curve(*errs):
        return {("m", "sampling", "majority"): {2 ** i: (1e3 * 2 ** i, same(1 - e)) for i, e in enumerate(errs)}}
    row = hand_row(1, curve(1, 1, 0, 0, 0), draws=20)
    assert row["verdict"] == "holds"
    assert row["measured"] == ("d/m: holds, gain/doubling n=1->4 +50.00pp [+50.00pp, +50.00pp], last n=8->16 "
                               "+0.00pp; 0.25 x early - last +12.50pp [+12.50pp, +12.50pp]")
    # decreasing, but not saturating: the last doubling gains a whole 100 points, more than 0.25 x 50
    assert hand_row(1, curve(1, 1, 0, 1, 0), draws=20)["verdict"] == "fails"
    assert hand_row(1, curve(0, 1, 1, 1, 1), draws=20)["verdict"] == "fails"  # increasing
    # three budgets are enough; two are not (and a model without them does not stop the others)
    assert hand_row(1, curve(1, 0, 0), draws=20)["verdict"] == "holds"
    two = {**{("a", *k[1:]): v for k, v in curve(1, 0).items()}, **curve(1, 0, 0)}
    row = hand_row(1, two, draws=20)
    assert row["measured"].startswith("d/a: cannot_check, 2 sampling budgets, need 3; d/m: holds, ")
    assert row["verdict"] == "holds"


def test_claim2_numbers():
    # n = 1, 2, 4: MV errors .5 each, WMV .25 (n=1, ignored: one candidate has no vote), .25 and 0
    pts = {("m", "sampling", "majority"): {n: (1e3 * n, frac(2)) for n in (1, 2, 4)},
           ("m", "sampling", "weighted_majority"): {1: (1e3, frac(3)), 2: (2e3, frac(3)), 4: (4e3, frac(4))}}
    row = hand_row(2, pts, auc={"m": 0.75})
    assert row["measured"] == "d/m: inconclusive, mean WMV - MV error over n > 1 -37.50pp [n/a, n/a] (AUC 0.75)"
    # only n = 1, or votes at different budgets: nothing to compare
    only1 = {k: {1: v[1]} for k, v in pts.items()}
    assert hand_row(2, only1)["measured"] == "d/m: cannot_check, no sampling budget n > 1 under both votes"
    uneven = {k: ({n: v[n] for n in (1, 2)} if k[2] == "majority" else v) for k, v in pts.items()}
    assert hand_row(2, uneven)["measured"] == "d/m: cannot_check, no sampling budget n > 1 under both votes"
    # a blind verifier on one model leaves the next one checked
    both = {**pts, **{("z", *k[1:]): v for k, v in pts.items()}}
    row = hand_row(2, both, auc={"m": 0.5, "z": 0.8})
    assert row["measured"].startswith("d/m: cannot_check, PRM within-problem AUC 0.50 < 0.6 on m's sampled "
                                      "candidates: the verifier cannot rank them; d/z: inconclusive, mean WMV")


def test_claims_3_and_4_numbers():
    # sampling at 1e2 (error .5) and 1e4 (.25): at 1e3, half way in log10 FLOPs, .375; REBASE there: 0
    samp = {("m", "sampling", "weighted_majority"): {1: (1e2, frac(2)), 100: (1e4, frac(3))}}
    pts = {**samp, ("m", "rebase", "weighted_majority"): {10: (1e3, frac(4))},
           ("m", "mcts", "weighted_majority"): {10: (1e3, frac(1))}}
    row = hand_row(3, pts, auc={"m": 0.7})
    assert row["measured"] == "d/m: inconclusive, mean rebase - sampling error at equal FLOPs -37.50pp [n/a, n/a] (AUC 0.70)"
    row = hand_row(4, pts, auc={"m": 0.7})
    assert row["measured"].startswith("d/m: inconclusive, mean mcts - sampling error at equal FLOPs +37.50pp [")
    # deterministic: REBASE always right, MCTS always wrong where sampling is half right
    det = {("m", "sampling", "weighted_majority"): {1: (1e2, same(0)), 100: (1e4, same(1))},
           ("m", "rebase", "weighted_majority"): {10: (1e3, same(1))},
           ("m", "mcts", "weighted_majority"): {10: (1e3, same(0))}}
    assert hand_row(3, det, draws=20)["verdict"] == "holds" and hand_row(4, det, draws=20)["verdict"] == "holds"
    # a model the gate stops does not stop the next one
    two = {**det, **{("z", *k[1:]): v for k, v in det.items()}}
    row = hand_row(3, two, draws=20, auc={"m": 0.1, "z": 0.9})
    assert row["verdict"] == "holds" and row["measured"].startswith("d/m: cannot_check, PRM")
    assert "d/z: holds, mean rebase - sampling error at equal FLOPs -50.00pp [-50.00pp, -50.00pp]" in row["measured"]


# the verifier gate reads the PRM's AUC on sampled candidates: a claim-10 run needs a sampling row for it
SAMPLED = {("m", "sampling", "weighted_majority"): {1: (1e2, same(0))}}


def test_claim10_rebase_against_beam_search_numbers():
    beam = {**SAMPLED, ("m", "beam_search", "weighted_majority"): {4: (1e2, same(0)), 64: (1e4, same(1))}}
    # REBASE at 1e3, half way (log10 FLOPs) between beam search's points: beam search interpolated there is .5
    better = {**beam, ("m", "rebase", "weighted_majority"): {8: (1e3, same(1))}}
    row = hand_row(10, better, draws=20, auc={"m": 0.8})
    assert row["verdict"] == "holds"
    assert row["measured"] == ("d/m: holds, mean rebase - beam_search error at equal FLOPs -50.00pp [-50.00pp, "
                               "-50.00pp] (interpolated; AUC 0.80)")
    worse = {**beam, ("m", "rebase", "weighted_majority"): {8: (1e3, same(0))}}
    assert hand_row(10, worse, draws=20)["verdict"] == "fails"
    # REBASE exactly as good as interpolated beam search on every draw: the interval is [0, 0]
    half = {**SAMPLED, ("m", "beam_search", "weighted_majority"): {4: (1e2, frac(2)), 64: (1e4, frac(2))},
            ("m", "rebase", "weighted_majority"): {8: (1e3, frac(2))}}
    assert hand_row(10, half, draws=20)["verdict"] == "inconclusive"
    # noise: REBASE right on other problems than beam search, 2 of 4 against 1 of 4 -> the interval straddles 0
    noisy = {**SAMPLED, ("m", "beam_search", "weighted_majority"): {4: (1e2, [0, 0, 1, 0]), 64: (1e4, [0, 0, 1, 0])},
             ("m", "rebase", "weighted_majority"): {8: (1e3, [1, 1, 0, 0])}}
    row = hand_row(10, noisy, draws=200)
    assert row["verdict"] == "inconclusive" and "-25.00pp [" in row["measured"]
    # the verifier gate: a PRM that cannot rank leaves nothing to check
    row = hand_row(10, better, draws=20, auc={"m": 0.55})
    assert row["verdict"] == "cannot_check"
    assert row["measured"].startswith("d/m: cannot_check, PRM within-problem AUC 0.55 < 0.6 on m's sampled")


def test_claim10_matches_one_beam_search_budget_at_its_nearest_not_lower_flops():
    # one beam search budget (the default study's): no range to interpolate in. REBASE's points at 1e2 and 5e2
    # meet beam search at 6e2 (not lower); the one at 1e3 has no beam search point that spends as much
    pts = {**SAMPLED, ("m", "beam_search", "weighted_majority"): {4: (6e2, same(0))},
           ("m", "rebase", "weighted_majority"): {2: (1e2, same(1)), 4: (5e2, frac(2)), 8: (1e3, same(0))}}
    row = hand_row(10, pts, draws=20)
    assert row["measured"].startswith("d/m: holds, mean rebase - beam_search error at equal FLOPs -75.00pp")
    assert "(at the nearest not-lower beam search FLOPs; AUC 0.90)" in row["measured"]
    late = {**SAMPLED, ("m", "beam_search", "weighted_majority"): {4: (1e2, same(0))},
            ("m", "rebase", "weighted_majority"): {4: (5e2, same(1))}}
    assert hand_row(10, late)["measured"] == "d/m: cannot_check, no rebase point at or below beam search's FLOPs"
    # a model with beam search but no REBASE; and no beam search at all
    alone = {**SAMPLED, ("m", "beam_search", "weighted_majority"): {4: (1e2, same(0))}}
    assert hand_row(10, alone)["measured"] == "d/m: cannot_check, no rebase rows for this model"
    none = {("m", "rebase", "weighted_majority"): {4: (1e2, same(0))}}
    assert hand_row(10, none)["measured"] == "no beam_search rows in the metrics"
    # the pairing itself: each other point against the cheapest base point that spends at least as much
    got = nearest_not_lower_difference(np.array([3.0, 1.0, 10.0]), np.array([[0.3, 0.1, 1.0]]),
                                       np.array([0.5, 2.0, 3.0, 11.0]), np.array([[0.0, 0.0, 0.0, 0.0]]))
    assert got[0] == pytest.approx(-(0.1 + 0.3 + 0.3) / 3)
    assert nearest_not_lower_difference(np.array([1.0]), np.array([[0.5]]), np.array([2.0]), np.array([[0.5]])) is None


def test_claim5_fit_on_a_hand_example():
    # tiny (1e5 params) never right at 1, 10, 100 FLOPs; base (1e6) right from 100 FLOPs on. The 12-point grid
    # 10^(3k/11), k = 0..11, keeps k >= 4 (base's first point, 10, is reached); tiny wins k = 4..7 (ties with base,
    # error 1: the smaller), base k = 8..11 (>= 100 FLOPs). Slope of log10 N_opt (5, 5, 5, 5, 6, 6, 6, 6) on
    # log10 C = 3k/11: cov / var = (3/11 * 8) / ((3/11)^2 * 42) = 264/378.
    pts = {("tiny", "sampling", "weighted_majority"): {n: (f, same(0)) for n, f in ((1, 1.0), (2, 10.0), (4, 100.0))},
           ("base", "sampling", "weighted_majority"): {n: (f, same(0 if f < 100 else 1))
                                                       for n, f in ((1, 10.0), (2, 100.0), (4, 1000.0))}}
    alpha = 264 / 378
    beta = 5.5 - alpha * 3 / 11 * 7.5
    a, b = 1 / alpha, -beta / alpha
    row = hand_row(5, pts, draws=10, params={"tiny": 1e5, "base": 1e6})
    assert row["verdict"] == "holds"
    assert row["measured"] == (f"d: holds, slope of log10 N_opt on log10 C {alpha:.3f} [{alpha:.3f}, {alpha:.3f}]; "
                               f"a={a:.2f} [{a:.2f}, {a:.2f}], b={b:.2f} [{b:.2f}, {b:.2f}] (paper a=1.19, b=2.03); "
                               "N_opt over 8 budgets 1e+05->1e+06")
    # the same best model at every budget: no slope, so no a and b (and no division by zero)
    flat = {k: {n: (f, same(1)) for n, (f, _) in v.items()} for k, v in pts.items()}
    flat[("tiny", "sampling", "weighted_majority")] = {n: (f, same(1)) for n, (f, _) in
                                                       pts[("tiny", "sampling", "weighted_majority")].items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = hand_row(5, flat, draws=10, params={"tiny": 1e5, "base": 1e6})
    assert row["measured"].startswith("d: inconclusive, slope of log10 N_opt on log10 C 0.000 [0.000, 0.000]; "
                                      "a=n/a [n/a, n/a], b=n/a [n/a, n/a]")
    # two budgets where both are measured are enough; one is not
    late = {**pts, ("base", "sampling", "weighted_majority"): {1: (300.0, same(1)), 2: (1000.0, same(1))}}
    row = hand_row(5, late, draws=10, params={"tiny": 1e5, "base": 1e6})
    assert "N_opt over 2 budgets" in row["measured"]  # 10^(30/11) and 10^3 are >= 300
    later = {**pts, ("base", "sampling", "weighted_majority"): {1: (999.0, same(1)), 2: (1000.0, same(1))}}
    row = hand_row(5, later, draws=10, params={"tiny": 1e5, "base": 1e6})
    assert row["measured"] == "d: cannot_check, fewer than 2 budgets where two model sizes are measured"


def test_claim6_numbers_per_subset():
    # q0 easy, q1 hard. Sampling at 1e2 and 1e4: easy error 1 then 0 (.5 at 1e3), hard 1 and 1; REBASE at 1e3
    # right on both: gain easy 50 points, hard 100 points
    pts = {("m", "sampling", "weighted_majority"): {1: (1e2, [0, 0]), 100: (1e4, [1, 0])},
           ("m", "rebase", "weighted_majority"): {10: (1e3, [1, 1])}}
    row = hand_row(6, pts, levels=(1, 4), auc={"m": 0.65})
    assert row["measured"] == ("d/m: inconclusive, gain easy +50.00pp, hard +100.00pp, hard - easy +50.00pp "
                               "[n/a, n/a] (AUC 0.65)")
    row = hand_row(6, pts, draws=30, levels=(1, 4), auc={"m": 0.65})
    assert row["verdict"] == "holds" and "hard - easy +50.00pp [+50.00pp, +50.00pp]" in row["measured"]
    # REBASE's hard problems cost more FLOPs, beyond sampling's range: the hard side cannot be compared
    far = {**pts, ("m", "rebase", "weighted_majority"): {10: ({"all": 1e3, "easy": 1e3, "hard": 1e5}, [1, 1])}}
    row = hand_row(6, far, levels=(1, 4))
    assert row["measured"] == "d/m: cannot_check, no rebase point inside sampling's FLOPs range (hard problems)"
    # no difficulty levels: no subsets
    row = hand_row(6, pts, levels=(0, 0))
    assert row["measured"] == "no easy/hard subsets (a data set without difficulty levels)" and row["claim_id"] == 6
    assert row["detail"] == METHOD[6]


def test_claim7_numbers():
    # sampling errors .75 .5 .5 .5 at n = 1..8; REBASE .75 .75 .25 at n = 2, 4, 8: the last shared doubling 4->8
    pts = {("m", "sampling", "weighted_majority"): {n: (1e3 * n, frac(k)) for n, k in ((1, 1), (2, 2), (4, 2), (8, 2))},
           ("m", "rebase", "weighted_majority"): {n: (2e3 * n, frac(k)) for n, k in ((2, 1), (4, 1), (8, 3))}}
    row = hand_row(7, pts, auc={"m": 0.85})
    assert row["measured"] == ("d/m: inconclusive, gain/doubling n=4->8: REBASE +50.00pp, sampling +0.00pp, "
                               "difference +50.00pp [n/a, n/a]; error at n=8: REBASE 25.0%, sampling 50.0% (AUC 0.85)")
    # two shared budgets suffice; one does not
    two = {**pts, ("m", "rebase", "weighted_majority"): {n: pts[("m", "rebase", "weighted_majority")][n] for n in (4, 8)}}
    assert "gain/doubling n=4->8: REBASE +50.00pp" in hand_row(7, two)["measured"]
    one = {**pts, ("m", "rebase", "weighted_majority"): {8: (1e4, frac(3))}, ("z", "sampling", "weighted_majority"):
           pts[("m", "sampling", "weighted_majority")], ("z", "rebase", "weighted_majority"): two[("m", "rebase", "weighted_majority")]}
    row = hand_row(7, one)
    assert row["measured"].startswith("d/m: cannot_check, fewer than 2 budgets shared by sampling and REBASE; d/z: ")


def test_claim8_numbers():
    # base's sampling: .5, .25, .25 at 1e2, 1e3, 1e4: the target .25, first reached at 1e3 (the cheaper tie).
    # tiny's REBASE: .75, .5, 0 at 10, 1e2, 1e3: .25 half way (log10) from 1e2 to 1e3, 10^2.5 FLOPs: saves 10^0.5 x
    base = {("base", "sampling", "weighted_majority"): {n: (f, frac(k)) for n, f, k in ((1, 1e2, 2), (2, 1e3, 3), (4, 1e4, 3))}}
    tiny = {("tiny", "rebase", "weighted_majority"): {n: (f, frac(k)) for n, f, k in ((1, 10.0, 1), (2, 1e2, 2), (4, 1e3, 4))},
            ("tiny", "sampling", "weighted_majority"): {1: (1.0, frac(1))}}
    kw = dict(params={"tiny": 1e5, "base": 1e6}, auc={"tiny": 0.8, "base": 0.9})
    row = hand_row(8, {**base, **tiny}, **kw)
    assert row["measured"] == (f"d: inconclusive, tiny REBASE vs base's best sampling error 25.0%: FLOPs saved "
                               f"{10 ** 0.5:.2f}x [n/a, n/a] (paper: about 2x, Llemma-7B vs 34B; AUC 0.80, AUC 0.90)")
    # never reached: 0x, fails (and no division warning)
    never = {**base, **tiny, ("tiny", "rebase", "weighted_majority"): {1: (10.0, same(0)), 2: (1e2, same(0))}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = hand_row(8, never, draws=10, **kw)
    assert row["verdict"] == "fails"
    assert "FLOPs saved never reached [never reached, never reached]" in row["measured"]
    # deterministic and reached at a quarter of base's FLOPs: holds, 4.00x
    det = {("base", "sampling", "weighted_majority"): {1: (1e2, same(0)), 2: (4e3, same(1)), 4: (1e4, same(1))},
           ("tiny", "rebase", "weighted_majority"): {1: (1e2, same(0)), 2: (1e3, same(1))},
           ("tiny", "sampling", "weighted_majority"): {1: (1.0, same(0))}}
    row = hand_row(8, det, draws=10, **kw)
    assert row["verdict"] == "holds" and "FLOPs saved 4.00x [4.00x, 4.00x]" in row["measured"]
    # the gate reads both models' verifiers
    for blind in ("tiny", "base"):
        row = hand_row(8, det, draws=10, params=kw["params"], auc={**kw["auc"], blind: 0.3})
        assert row["measured"] == (f"d: cannot_check, PRM within-problem AUC 0.30 < 0.6 on {blind}'s sampled "
                                   "candidates: the verifier cannot rank them")


def test_claim9_numbers_and_tolerance_boundaries():
    def pts(pred, meas, aggs=("majority", "weighted_majority")):
        out = {("m", "sampling", "majority"): {4: (1e3, frac(2, 2))}}
        for agg in aggs:
            out[("m", "sampling", agg, "limit_predicted")] = {2: (0, pred)}
            out[("m", "sampling", agg, "half_measured")] = {2: (0, meas)}
        return out

    two = dict(levels=(1, 1))
    row = hand_row(9, pts([1, 0], [1, 1]), **two)
    assert row["measured"] == (
        "d/m/majority: inconclusive, predicted 50.0%, measured 100.0% (n=2 each), measured - predicted +50.00pp "
        "[n/a, n/a]; d/m/weighted_majority: inconclusive, predicted 50.0%, measured 100.0% (n=2 each), measured - "
        "predicted +50.00pp [n/a, n/a]")
    # only weighted majority has the half-split outcomes: it is still checked
    row = hand_row(9, pts([1, 0], [1, 1], aggs=("weighted_majority",)), **two)
    assert row["measured"].startswith("d/m/weighted_majority: inconclusive, predicted 50.0%")
    # no half-split outcomes at all
    row = hand_row(9, {("m", "sampling", "majority"): {4: (1e3, [1, 0])}}, **two)
    assert row["measured"] == "no sampling run with at least 4 candidates" and row["detail"] == METHOD[9].format(points=5)

    def verdict(pred, meas, tol):
        return hand_row(9, pts(pred, meas, ("majority",)), settings=Settings(draws=200, theorem_tolerance=tol),
                        **two)["verdict"]
    # point intervals at the tolerance's edges are within it
    assert verdict([1, 1], [0, 0], 1.0) == "holds"  # [-1, -1]
    assert verdict([0, 0], [1, 1], 1.0) == "holds"  # [+1, +1]
    # an interval [0, 1] (one problem differs): with no tolerance, neither inside nor outside
    assert verdict([1, 0], [1, 1], 0.0) == "inconclusive"
    assert verdict([1, 1], [1, 0], 0.0) == "inconclusive"  # [-1, 0]
    assert verdict([1, 1], [1, 0], 0.5) == "inconclusive"  # [-1, 0] straddles -0.5
    assert verdict([1, 1], [0, 0], 0.5) == "fails"
    row = hand_row(9, pts([1, 1], [1, 0], ("majority",)), **two)
    assert "predicted 100.0%, measured 50.0% (n=2 each), measured - predicted -50.00pp" in row["measured"]


def test_evidence_reads_the_run_as_set():
    pts = {("m", "sampling", "weighted_majority"): {1: ({"all": 1e2, "easy": 50.0, "hard": 2e2}, [1, 0]),
                                                    2: (2e2, [1, 1])},
           ("m", "greedy", "majority"): {1: (1.0, [1, 0])}}
    metrics, problems = hand_run(pts, levels=(1, 4), auc={"m": 0.6})
    # FLOPs per subset; an n the outcomes lack is left out of the curve
    extra = metrics[metrics["n"] == 2].assign(n=8, policy_flops=8e2)
    ev = Evidence(pd.concat([metrics, extra]), problems, Settings(draws=3, seed=5))
    ns, fl, err = ev.curve("d", "m", "sampling", "weighted_majority", "easy")
    assert list(ns) == [1, 2] and list(fl) == [50.0, 2e2] and err.shape == (4, 2)
    assert list(ev.curve("d", "m", "sampling", "weighted_majority", "hard")[1]) == [2e2, 2e2]
    ns, fl, err = ev.curve("d", "m", "rebase", "weighted_majority")  # not run: empty
    assert len(ns) == len(fl) == 0 and err.shape == (4, 0)
    # the settings' FLOPs column, draws and seed
    ev_total = Evidence(metrics, problems, Settings(draws=3, seed=5, x="total_flops"))
    assert list(ev_total.curve("d", "m", "sampling", "weighted_majority")[1]) == [3e2, 6e2]
    same_seed = Evidence(metrics, problems, Settings(draws=3, seed=5)).curve("d", "m", "sampling", "weighted_majority")[2]
    other = Evidence(metrics, problems, Settings(draws=3, seed=6)).curve("d", "m", "sampling", "weighted_majority")[2]
    assert np.array_equal(ev.curve("d", "m", "sampling", "weighted_majority")[2], same_seed)
    assert not np.array_equal(same_seed, other)
    # units per strategy
    assert ev.units("sampling") == [("d", "m")] and ev.units("rebase") == []
    # the gate: AUC at the gate passes, below it or unknown does not
    assert ev.gate("d", "m") is None
    assert ev.gate("d", "m", "x") == Unit("cannot_check", "PRM within-problem AUC nan < 0.6 on x's sampled candidates: "
                                                          "the verifier cannot rank them")
    assert ev.auc_text("d", "m", "x") == "AUC 0.60, AUC nan"


def test_the_verifier_auc_is_sampling_at_the_largest_n_on_all_problems():
    pts = {("m", "sampling", "weighted_majority"): {1: (1.0, [1, 0]), 4: (4.0, [1, 0])},
           ("m", "rebase", "weighted_majority"): {4: (4.0, [1, 0])}}
    metrics, problems = hand_run(pts, levels=(1, 4))
    is_ = lambda col, v: metrics[col] == v  # noqa: E731
    metrics.loc[is_("n", 1), "prm_auc"] = 0.1
    metrics.loc[is_("strategy", "rebase"), "prm_auc"] = 0.2
    metrics.loc[is_("subset", "easy"), "prm_auc"] = 0.3
    metrics.loc[is_("strategy", "sampling") & is_("n", 4) & is_("subset", "all"), "prm_auc"] = [0.7]
    assert Evidence(metrics, problems, Settings(draws=0)).auc == {("d", "m"): pytest.approx(0.7)}
    assert Evidence(metrics.drop(columns="prm_auc"), problems, Settings(draws=0)).auc == {}


def test_evaluate_claims_takes_settings_or_overrides_and_files_round_trip(tmp_path):
    pts = {("m", "sampling", "majority"): {n: (1e3 * n, frac(k)) for n, k in ((1, 1), (2, 2), (4, 3))}}
    metrics, problems = hand_run(pts)
    a = evaluate_claims(metrics, problems, draws=0, saturation_fraction=0.5)
    b = evaluate_claims(metrics, problems, Settings(draws=0, saturation_fraction=0.5))
    pd.testing.assert_frame_equal(a, b)
    assert "0.5 x early - last" in a.loc[0, "measured"]
    write_claims(a, tmp_path / "claims.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "claims.csv"), a)
    # per-problem files: ids stay text ("007" is not 7), rows renumbered
    for i in (1, 2):
        pd.DataFrame({"id": ["007", f"0{i}"], "correct": [1, 0]}).to_csv(tmp_path / f"p{i}.csv", index=False)
    got = load_problems([tmp_path / "p1.csv", tmp_path / "p2.csv"])
    assert list(got["id"]) == ["007", "01", "007", "02"] and list(got.index) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="^load_problems: no per-problem files given$"):
        load_problems([])


def test_claim5_envelope_is_the_running_best_and_first_points_reach_the_first_budget():
    # both models start at 1100 FLOPs, whose 10^log10 rounds below 1100: the grid's first budget is still reached.
    # base (1e6) right at 1100 only, tiny (1e5) at 110000 only: the running best keeps base's early 0 error, so base
    # is the best model at every budget but the last (a tie at 0 there: the smaller, tiny)
    flops = (1100.0, 11000.0, 110000.0)
    pts = {("tiny", "sampling", "weighted_majority"): {n: (f, same(int(f == flops[2]))) for n, f in zip((1, 2, 4), flops)},
           ("base", "sampling", "weighted_majority"): {n: (f, same(int(f == flops[0]))) for n, f in zip((1, 2, 4), flops)}}
    lc = np.log10(1100) + 2 * np.arange(12) / 11
    alpha = np.polyfit(lc, [6] * 11 + [5], 1)[0]
    row = hand_row(5, pts, draws=10, params={"tiny": 1e5, "base": 1e6})
    assert row["measured"] == (f"d: fails, slope of log10 N_opt on log10 C {alpha:.3f} [{alpha:.3f}, {alpha:.3f}]; "
                               "a=n/a [n/a, n/a], b=n/a [n/a, n/a] (paper a=1.19, b=2.03); N_opt over 12 budgets "
                               "1e+06->1e+05")


# ------------------------------------------------------------------ the scorecard by unit (results/claims_units.csv)

def test_units_agree_with_their_claims():
    """On synthetic runs where models disagree: a claim holds iff every checkable unit holds, fails iff one fails;
    its `units` column counts them; every checked unit's estimate lies in its interval, and the interval is on the
    side its verdict says."""
    good = default_effects()
    runs = [{}, {"tiny": good, "small": {**good, "wmv": -0.08, "rebase": 0.0}, "base": {**good, "auc": 0.5}},
            dict(wmv=0.0, rebase=-0.15, mcts=+0.15, theorem_gap=0.2)]
    seen = set()
    for effects in runs:
        claims, units = evaluate(*build(effects), Settings(draws=100))
        assert list(units.columns) == ["claim_id", "dataset", "model", "aggregation", "verdict", "quantity",
                                       "estimate", "low", "high", "measured"]
        for row in claims.itertuples():
            u = units[units["claim_id"] == row.claim_id]
            checked = [v for v in u["verdict"] if v != "cannot_check"]
            expected = ("cannot_check" if not checked else "fails" if "fails" in checked
                        else "holds" if set(checked) == {"holds"} else "inconclusive")
            assert row.verdict == expected, (row.claim_id, list(u["verdict"]))
            counts = {v: list(u["verdict"]).count(v) for v in set(u["verdict"])}
            assert row.units == ", ".join(f"{v} {counts[v]}/{len(u)}" for v in
                                          ("holds", "fails", "inconclusive", "cannot_check") if v in counts)
            # each unit is named in the claim's text with its verdict
            for unit in u.itertuples():
                key = "/".join(x for x in (unit.dataset, unit.model, unit.aggregation) if x)
                assert f"{key}: {unit.verdict}, {unit.measured}" in row.measured
            seen |= set(u["verdict"])
        ok = units[units["verdict"] != "cannot_check"]
        assert (ok["low"] <= ok["estimate"]).all() and (ok["estimate"] <= ok["high"]).all()
        assert units.loc[units["verdict"] == "cannot_check", ["estimate", "low", "high"]].isna().all().all()
        # sign claims: an error difference the paper says is negative (2, 3, 10) holds iff its interval is below zero
        signed = units[units["claim_id"].isin([2, 3, 10]) & (units["verdict"] != "cannot_check")]
        assert ((signed["verdict"] == "holds") == (signed["high"] < 0)).all()
        assert ((signed["verdict"] == "fails") == (signed["low"] > 0)).all()
        assert (units["dataset"] == "toy").all()
        assert set(units.loc[units["claim_id"] == 9, "aggregation"]) <= {"majority", "weighted_majority"}
        assert (units.loc[units["claim_id"].isin([5, 8]), "model"] == "").all()  # per data set
    assert seen == {"holds", "fails", "inconclusive", "cannot_check"}


def test_units_on_a_hand_made_run():
    # sampling errors 1 at 1e2 FLOPs and 0 at 1e4: 0.5 at 1e3 (log-linear). REBASE there: a always right (-50
    # points on every draw), b right on half the problems (0 points, an interval either side of zero); c's verifier
    # is blind.
    pts = {}
    for m, rebase in (("a", same(1)), ("b", frac(2)), ("c", same(1))):
        pts[(m, "sampling", "weighted_majority")] = {1: (1e2, same(0)), 100: (1e4, same(1))}
        pts[(m, "rebase", "weighted_majority")] = {10: (1e3, rebase)}
    claims, units = evaluate(*hand_run(pts, auc={"a": 0.9, "b": 0.9, "c": 0.1}), Settings(draws=50))
    row = claims.set_index("claim_id").loc[3]
    assert (row["verdict"], row["units"]) == ("inconclusive", "holds 1/3, inconclusive 1/3, cannot_check 1/3")
    u = units[units["claim_id"] == 3].set_index("model")
    assert list(u.index) == ["a", "b", "c"] and set(u["dataset"]) == {"d"} and set(u["aggregation"]) == {""}
    assert list(u["verdict"]) == ["holds", "inconclusive", "cannot_check"]
    assert u.loc["a", ["estimate", "low", "high"]].tolist() == [-0.5, -0.5, -0.5]
    assert u.loc["b", "estimate"] == 0.0 and u.loc["b", "low"] < 0 < u.loc["b", "high"]
    assert u.loc["a", "quantity"] == "rebase - sampling error at equal FLOPs (weighted majority)"
    assert u.loc["c", "measured"].startswith("PRM within-problem AUC 0.10 < 0.6")
    # claim 6 has no easy/hard subsets here: a claim without units says so
    assert claims.set_index("claim_id").loc[6, "units"] == "no unit" and not (units["claim_id"] == 6).any()


def test_unit_summary_counts_in_verdict_order():
    assert unit_summary(["inconclusive", "holds", "holds"]) == "holds 2/3, inconclusive 1/3"
    assert unit_summary(["cannot_check", "fails"]) == "fails 1/2, cannot_check 1/2"
    assert unit_summary([]) == "no unit"


def test_claim1_unit_carries_the_part_that_decided_it():
    # errors 1, .5, 0, 0, 0 at n = 1..16: early gain 50 points a doubling, nothing left to gain late: holds on the
    # saturation; a flat curve is decided by its early gain (none)
    pts = {("m", "sampling", "majority"): {2 ** i: (1e3 * 2 ** i, same(e)) for i, e in enumerate((0, 0, 1, 1, 1))}}
    pts[("m", "sampling", "majority")][2] = (2e3, frac(2))
    _, units = evaluate(*hand_run(pts), Settings(draws=20))
    u = units[units["claim_id"] == 1].iloc[0]
    assert u["verdict"] == "holds" and u["quantity"] == "0.25 x early drop per doubling - last doubling's drop"
    assert u["estimate"] == pytest.approx(0.25 * 0.5 - 0.0)
    flat = {("m", "sampling", "majority"): {2 ** i: (1e3 * 2 ** i, same(0)) for i in range(5)}}
    _, units = evaluate(*hand_run(flat), Settings(draws=20))
    u = units[units["claim_id"] == 1].iloc[0]
    assert u["verdict"] == "inconclusive" and u["quantity"] == "error drop per doubling of n, first two doublings"
    assert (u["estimate"], u["low"], u["high"]) == (0.0, 0.0, 0.0)
