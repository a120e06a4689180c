"""Beam search and DVTS with a scripted engine and PRM whose outcomes are known: which nodes are kept and
expanded, finished paths leaving the beam, the stop rules, DVTS's independent subtrees, cost bookkeeping."""
from __future__ import annotations

import copy
import re

import pytest
from scripted import ScriptedEngine, ScriptedPRM

from infscale.core.stepformat import STEP_TAG
from infscale.search.beam_search import run_beam_search
from infscale.search.dvts import run_dvts
from infscale.search.engine_base import derived_seed
from infscale.search.strategies import run_strategy

TAG = STEP_TAG
ROWS = [{"id": "p0", "question": "What is 3 + 4?", "answer": "7", "level": 1},
        {"id": "p1", "question": "What is 10 - 3?", "answer": "7"}]


def labelled(reward, final=lambda label: False, tokens=5):
    """A step function whose steps name their place in the tree: label "0.1" is the second child of the first
    first step. `reward(label)` and `final(label)` script the PRM's score and whether the path answers."""
    def fn(q, path, d, i):
        above = re.findall(r"s\[([\d.]+)\]", path)
        label = f"{above[-1]}.{i}" if above else str(i)
        text = f" s[{label}] r={reward(label)}" + (" The answer is: 7" if final(label) else "") + f" {TAG}"
        return text, tokens, "stop"
    return fn


def run(strategy, fn, n=4, width=2, rows=ROWS[:1], seed=0, **params):
    engine, prm = ScriptedEngine(fn), ScriptedPRM()
    search = run_beam_search if strategy == "beam_search" else run_dvts
    return search(engine, prm, rows, "toy", n, {"beam_width": width, **params}, seed), engine, prm


def labels(record):
    """label -> node of a record's tree."""
    out = {}
    for node in record["tree"]:
        out[re.search(r"s\[([\d.]+)\]", node["text"]).group(1)] = node
    return out


def expanded(record):
    return sorted(k for k, node in labels(record).items() if node["width"] > 0)


def root_of(label):
    return label.split(".")[0]


def first_step(candidate):
    """The label of the first step a candidate's path starts from."""
    return re.match(r" s\[(\d+)", candidate["text"]).group(1)


# ---------------------------------------------------------------- beam search


def test_beam_search_keeps_the_best_open_nodes_and_expands_each_m_times():
    rewards = {"0": 0.9, "1": 0.3, "2": 0.9, "3": 0.9, "0.0": 0.1, "0.1": 0.8, "2.0": 0.7, "2.1": 0.2}
    records, engine, prm = run("beam_search", labelled(lambda k: rewards.get(k, 0.5)), max_depth=3)
    rec = records[0]
    # N = 4 first steps; N/M = 2 kept (of three tied at 0.9, the two earlier), each expanded M = 2 times
    assert [len(p) for p, _ in engine.calls] == [4, 4, 4]
    assert expanded(rec) == ["0", "0.1", "2", "2.0"]
    assert all(labels(rec)[k]["width"] == 2 for k in expanded(rec))
    assert sorted(k for k in labels(rec) if k.count(".") == 2) == ["0.1.0", "0.1.1", "2.0.0", "2.0.1"]
    # max_depth 3: the last depth is scored, then dropped; nothing answered, no candidate
    assert {n["drop_reason"] for n in rec["tree"] if n["depth"] == 3} == {"depth"}
    assert rec["candidates"] == [] and len(prm.calls) == 3
    assert [p.seed for _, p in engine.calls] == [derived_seed(0, d) for d in (1, 2, 3)]
    assert {n["subtree"] for n in rec["tree"]} == {0}


def test_finished_paths_leave_the_beam_and_become_candidates():
    # "1" answers with the best reward: it is a candidate, not a beam; the beam keeps the best two open nodes
    rewards = {"0": 0.5, "1": 0.95, "2": 0.4, "3": 0.6}
    records, engine, _ = run("beam_search", labelled(lambda k: rewards.get(k, 0.7),
                                                      final=lambda k: k == "1" or k.count(".") == 1))
    rec = records[0]
    assert expanded(rec) == ["0", "3"]
    assert labels(rec)["1"]["finished"] and labels(rec)["1"]["width"] == 0
    # depth 2: all four children answer -> 5 finished >= N: it stops, and keeps every finished path
    assert [len(p) for p, _ in engine.calls] == [4, 4]
    texts = [c["text"] for c in rec["candidates"]]
    assert len(texts) == 5 and texts[0].startswith(" s[1] ")
    assert [c["step_scores"] for c in rec["candidates"]] == [[0.95]] + [[rewards[k], 0.7] for k in "0033"]


def test_beam_search_stops_at_n_finished_paths_even_with_open_nodes():
    # depth 1: two answer; depth 2: two of the four children answer -> 4 = N finished, the open two are not expanded
    records, engine, _ = run("beam_search", labelled(lambda k: 0.5, final=lambda k: k in ("0", "1", "2.0", "3.1")))
    assert [len(p) for p, _ in engine.calls] == [4, 4]
    assert len(records[0]["candidates"]) == 4
    assert labels(records[0])["2.1"]["finished"] is False and labels(records[0])["2.1"]["width"] == 0


def test_beam_search_stops_when_no_node_is_open():
    # everything but "0" is cut at the step limit; "0"'s children all end without a tag
    def fn(q, path, d, i):
        if d == 1 and i == 0:
            return f" s[0] r=0.5 {TAG}", 5, "stop"
        return " r=0.5 cut", 9, "length" if d == 1 else "stop"

    records, engine, prm = run("beam_search", fn)
    assert [len(p) for p, _ in engine.calls] == [4, 2]  # only the open node was kept: no duplication up to N/M
    assert [n["drop_reason"] for n in records[0]["tree"]] == [None, "length", "length", "length", "no_tag", "no_tag"]
    assert records[0]["candidates"] == [] and [len(c) for c in prm.calls] == [1]


def test_one_engine_and_prm_call_per_depth_across_problems():
    # p0 answers at depth 1; p1 at depth 2: both in the first call, p1 alone in the second
    def fn(q, path, d, i):
        return labelled(lambda k: 0.5, final=lambda k: q.startswith("What is 3") or k.count(".") == 1)(q, path, d, i)

    records, engine, prm = run("beam_search", fn, rows=ROWS)
    assert [len(p) for p, _ in engine.calls] == [8, 4] and len(prm.calls) == 2
    assert [len(r["candidates"]) for r in records] == [4, 4]
    assert [r["id"] for r in records] == ["p0", "p1"]


# ---------------------------------------------------------------- DVTS


def prefers_branch_0(k):
    return 0.9 if k.startswith("0") else 0.1


def test_a_prm_preferring_one_branch_collapses_beam_search_but_not_dvts():
    finals = lambda k: k.count(".") == 3  # noqa: E731 (every path answers at depth 4)
    beam, _, _ = run("beam_search", labelled(prefers_branch_0, final=finals))
    dvts, engine, _ = run("dvts", labelled(prefers_branch_0, final=finals))
    beam, dvts = beam[0], dvts[0]
    # beam search: "0" and "1" kept at depth 1 (0.9, then the first 0.1), then only "0"'s children
    assert expanded(beam) == ["0", "0.0", "0.0.0", "0.0.1", "0.1", "1"]
    assert {first_step(c) for c in beam["candidates"]} == {"0"}
    # DVTS: subtrees {0, 1} and {2, 3} each follow their own best child: "2" is kept though "1" scores as well
    assert expanded(dvts) == ["0", "0.0", "0.0.0", "2", "2.0", "2.0.0"]
    assert sorted(first_step(c) for c in dvts["candidates"]) == ["0", "0", "2", "2"]
    assert [len(p) for p, _ in engine.calls] == [4, 4, 4, 4]
    # every node records its subtree: the first steps dealt in order, children in their parent's
    sub = {k: n["subtree"] for k, n in labels(dvts).items()}
    assert all(sub[k] == (0 if root_of(k) in "01" else 1) for k in sub)


def test_dvts_subtrees_stop_on_their_own():
    # subtree 0 ({0, 1}) answers at depth 2, subtree 1 ({2, 3}) at depth 3: subtree 0 stops once M = 2 have finished
    finals = lambda k: k.count(".") == (1 if root_of(k) in "01" else 2)  # noqa: E731
    records, engine, _ = run("dvts", labelled(lambda k: 0.5, final=finals))
    assert [len(p) for p, _ in engine.calls] == [4, 4, 2]
    rec = records[0]
    assert expanded(rec) == ["0", "2", "2.0"]
    assert len(rec["candidates"]) == 4
    # each subtree keeps ONE node: N/M = 2 subtrees of width M = 2 at N = 4
    records, engine, _ = run("dvts", labelled(lambda k: 0.5), n=8, width=2, max_depth=3)
    assert [len(p) for p, _ in engine.calls] == [8, 8, 8]
    assert expanded(records[0]) == ["0", "0.0", "2", "2.0", "4", "4.0", "6", "6.0"]


def test_dvts_with_one_subtree_is_beam_search_of_width_n():
    fn = labelled(lambda k: len(k) / 10, final=lambda k: k.count(".") == 2)
    d, _, _ = run("dvts", fn, n=4, width=4)
    b, _, _ = run("beam_search", fn, n=4, width=4)
    assert d == b


# ---------------------------------------------------------------- validation and bookkeeping


@pytest.mark.parametrize("strategy", ["beam_search", "dvts"])
def test_a_beam_width_that_does_not_divide_n_is_a_config_error(strategy):
    with pytest.raises(ValueError, match=rf"config key strategies\.{strategy}\.beam_width: 4 does not divide the "
                                         rf"budget 6"):
        run(strategy, labelled(lambda k: 0.5), n=6, width=4)
    with pytest.raises(ValueError, match=rf"strategies\.{strategy}\.beam_width: must be a positive integer"):
        run(strategy, labelled(lambda k: 0.5), n=4, width=0)
    with pytest.raises(ValueError, match=f"{strategy} budget must be a positive integer"):
        run(strategy, labelled(lambda k: 0.5), n=0)
    # run_strategy (what a generate job calls) reaches the same check
    with pytest.raises(ValueError, match=rf"strategies\.{strategy}\.beam_width"):
        run_strategy(ScriptedEngine(labelled(lambda k: 0.5)), ScriptedPRM(), ROWS, "toy", strategy,
                     {"beam_width": 3}, 4, 0)


def test_run_strategy_dispatches_and_the_default_width_is_4():
    fn = labelled(lambda k: 0.5, final=lambda k: k.count(".") == 1)
    for strategy in ("beam_search", "dvts"):
        engine = ScriptedEngine(fn)
        records = run_strategy(engine, ScriptedPRM(), ROWS[:1], "toy", strategy, {}, 8, 0)
        # M = 4 at N = 8: beam search keeps 2 nodes, DVTS 2 subtrees of one node, 4 children each
        assert [len(p) for p, _ in engine.calls] == [8, 8]
        assert sum(n["width"] == 4 for n in records[0]["tree"]) == 2
    with pytest.raises(ValueError, match="beam_width: 4 does not divide the budget 6"):
        run_strategy(ScriptedEngine(fn), ScriptedPRM(), ROWS[:1], "toy", "dvts", {}, 6, 0)


def _mixed(q, path, d, i):
    """Rewards vary with the path; some steps answer, some are cut at the step limit."""
    h = derived_seed(q, path, i)
    r = round((h % 97) / 97, 3)
    if d >= 2 and h % 4 == 0:
        return f" r={r} The answer is: 7 {TAG}", 3 + h % 5, "stop"
    if h % 9 == 0:
        return f" r={r} cut", 9, "length"
    return f" r={r} {TAG}", 3 + h % 5, "stop"


@pytest.mark.parametrize("strategy,n,width", [("beam_search", 8, 2), ("beam_search", 8, 4), ("dvts", 8, 2),
                                              ("dvts", 12, 4)])
def test_cost_and_the_beam_rule_on_random_outcomes(strategy, n, width):
    records, engine, prm = run(strategy, _mixed, n=n, width=width, rows=ROWS, max_depth=7)
    # every generated node is in exactly one record's cost, every scored node's PRM read too
    assert sum(len(r["cost"]["decode"]) for r in records) == sum(len(p) for p, _ in engine.calls)
    assert sum(len(r["cost"]["prm_tokens"]) for r in records) == sum(len(s) for s in prm.calls)
    groups = n // width if strategy == "dvts" else 1
    budget, kept = n // groups, n // groups // width
    for rec in records:
        tree = rec["tree"]
        assert len(rec["cost"]["decode"]) == len(tree)
        assert [g for _, g in rec["cost"]["decode"]] == [node["tokens"] for node in tree]
        assert sum(n_["reward"] is not None for n_ in tree) == len(rec["cost"]["prm_tokens"])
        assert len(rec["candidates"]) == sum(n_["finished"] for n_ in tree)
        assert sum(n_["parent"] is None for n_ in tree) == n
        for g in range(groups):
            finished_before = 0
            for depth in range(1, 8):
                level = [n_ for n_ in tree if n_["depth"] == depth and n_["subtree"] == g]
                open_ = [n_ for n_ in level if not n_["finished"] and not n_["dropped"]]
                grown = [n_ for n_ in level if n_["width"] > 0]
                finished_before += sum(n_["finished"] for n_ in level)
                if finished_before >= budget or not open_:
                    assert grown == []  # a subtree that has its paths, or no open node, stops
                    continue
                # the kept nodes are the best open ones (ties: the earlier), each expanded M times
                best = sorted(open_, key=lambda x: -x["reward"])[:kept]
                assert [x["id"] for x in grown] == sorted(x["id"] for x in best)
                assert all(x["width"] == width for x in grown)
                assert all(n_["width"] == 0 for n_ in level if n_ not in grown)
    assert records == run(strategy, _mixed, n=n, width=width, rows=ROWS, max_depth=7)[0]  # deterministic


# ---------------------------------------------------------------- config


def test_the_config_checks_the_beam_width_against_every_budget():
    from pathlib import Path

    import yaml

    from infscale.core.config import ConfigError, generation_runs, resource_parts
    from infscale.core.validation import validate_config

    ci = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "ci.yaml").read_text())
    c = validate_config(copy.deepcopy(ci))
    assert "beam_width" not in c["strategies"]["rebase"]  # no schema default: REBASE's params stay as they were
    assert generation_runs(c, "tiny-a", "dvts") == [(4, [4])]  # a tree search: one run a budget
    assert resource_parts("generate", "beam_search")[-1] == "generate_tree"  # the PRM is in the job
    bad = copy.deepcopy(ci)
    bad["strategies"]["dvts"].update(budgets=[4, 6, 9], beam_width=4)
    with pytest.raises(ConfigError, match=r"config key strategies\.dvts\.beam_width: 4 does not divide the "
                                          r"budget\(s\) 6, 9 \(strategies\.dvts\.budgets\)"):
        validate_config(bad)
    bad = copy.deepcopy(ci)
    bad["strategies"]["beam_search"].pop("beam_width")  # the default M = 4 does not divide 2
    with pytest.raises(ConfigError, match=r"strategies\.beam_search\.beam_width: 4 does not divide the budget\(s\) 2"):
        validate_config(bad)
    bad = copy.deepcopy(ci)
    bad["strategies"]["beam_search"]["beam_width"] = 0
    with pytest.raises(ConfigError, match=r"strategies\.beam_search\.beam_width: 0 is less than the minimum"):
        validate_config(bad)
    bad = copy.deepcopy(ci)
    bad["report"] = {"table1": {"dvts_budget": 8}}
    with pytest.raises(ConfigError, match=r"report\.table1\.dvts_budget: 8 is not a dvts budget of model tiny-a"):
        validate_config(bad)


# ---------------------------------------------------------------- Table 1 and figures


def _with_beam_rows(metrics, strategies=("beam_search", "dvts"), ns=(4, 8, 16)):
    """Synthetic metrics plus beam search / DVTS rows: REBASE's at budgets `ns`, 5% more FLOPs and 1 point more
    error for each."""
    import pandas as pd

    reb = metrics[(metrics["strategy"] == "rebase") & metrics["n"].isin(ns)]
    extra = []
    for i, s in enumerate(strategies, 1):
        rows = reb.assign(strategy=s, error=reb["error"] + 0.01 * i, accuracy=reb["accuracy"] - 0.01 * i)
        for col in ("policy_flops", "total_flops"):
            rows[col] = rows[col] * (1 + 0.05 * i)
        extra.append(rows)
    return pd.concat([metrics, *extra], ignore_index=True)


def test_table1_has_beam_search_and_dvts_at_their_configured_budgets():
    from test_reporting import make_metrics

    from infscale.reporting.report import seed_summary
    from infscale.reporting.tables import table1

    s = seed_summary(_with_beam_rows(make_metrics(rebase=True)))
    t = table1(s)
    assert list(t["strategy"]) == ["sampling", "rebase", "beam_search", "dvts"] * 3
    assert list(t["samples"]) == [16, 1, 4, 4] * 3  # defaults: sampling's largest, the searches' smallest
    t = table1(s, rebase_n=4, beam_search_n=8, dvts_n=16)
    assert list(t["samples"]) == [16, 4, 8, 16] * 3
    # beam search without REBASE still makes a table; a budget the run lacks leaves that row out
    only = seed_summary(_with_beam_rows(make_metrics(rebase=True), ("beam_search",)))
    only = only[only["strategy"] != "rebase"]
    assert list(table1(only)["strategy"]) == ["sampling", "beam_search"] * 3
    assert list(table1(only, beam_search_n=32)["strategy"]) == []


def test_figures_draw_beam_search_and_dvts_in_their_own_colours(tmp_path):
    from test_reporting import make_metrics

    from infscale.core.config import STRATEGIES
    from infscale.reporting.plotting import (
        STRATEGY_COLORS,
        STRATEGY_LABELS,
        STRATEGY_MARKERS,
        plot_error_vs_flops,
        plot_grid,
        plot_strategies,
    )
    from infscale.reporting.report import seed_summary

    searched = [s for s in STRATEGIES if s != "greedy"]
    assert set(searched) <= set(STRATEGY_COLORS) and set(STRATEGIES) <= set(STRATEGY_LABELS)
    assert len({STRATEGY_COLORS[s] for s in searched}) == len(searched)  # no two strategies share a colour
    assert STRATEGY_MARKERS["beam_search"] != STRATEGY_MARKERS["dvts"]
    s = seed_summary(_with_beam_rows(make_metrics(rebase=True)))
    got = plot_error_vs_flops(s, "toy", "small", tmp_path / "e.png", tmp_path / "e.pdf")
    assert list(dict.fromkeys(got["panel"])) == ["sampling", "rebase", "beam_search", "dvts"]
    got = plot_strategies(s, "toy", "small", "weighted_majority", tmp_path / "s.png", tmp_path / "s.pdf")
    assert set(got["strategy"]) == {"greedy", "sampling", "rebase", "beam_search", "dvts"}
    got = plot_grid(s[s["model"] == "small"], "aggregation", tmp_path / "g.png", tmp_path / "g.pdf")
    curves = set(got["curve"])
    assert any(c.startswith("Beam search") for c in curves) and any(c.startswith("DVTS") for c in curves)
    assert (tmp_path / "g.png").stat().st_size > 1000
