import pytest

from infscale.evaluation import metrics_rows, problem_correct, problem_flops, subsets
from infscale.flops import ModelShape, decode_flops, prefill_flops, scoring_flops

POLICY = ModelShape(non_embedding_params=1000, n_layer=2, d_attn=8)
PRM = ModelShape(non_embedding_params=500, n_layer=1, d_attn=8)


def cand(answer, scores, tokens=5, prm_tokens=9):
    return {"text": f"The answer is: {answer} ки", "answer": answer, "tokens": tokens, "step_scores": scores,
            "prm_tokens": prm_tokens}


def record(level=1):
    # Majority says 7 (wrong); the PRM prefers 5 (right) by weight and by best-of-n.
    return {"id": "p", "reference": "5", "level": level, "prompt_tokens": 4,
            "candidates": [cand("7", [0.2]), cand("7", [0.3]), cand("5", [0.9]), cand(None, [1.0]), cand("7", [0.1])]}


def test_aggregations_decide_correctness():
    r = record()
    assert not problem_correct(r, 5, "majority", "toy", "last")
    assert problem_correct(r, 5, "weighted_majority", "toy", "last")  # 0.9 vs 0.6
    assert problem_correct(r, 5, "best_of_n", "toy", "last")  # the unparseable 1.0 is never chosen
    assert not problem_correct(r, 2, "best_of_n", "toy", "last")  # only the first two candidates


def test_unscored_candidates_are_an_error_for_prm_aggregations():
    r = record()
    del r["candidates"][0]["step_scores"]
    assert not problem_correct(r, 5, "majority", "toy", "last")
    with pytest.raises(ValueError, match="no PRM scores"):
        problem_correct(r, 5, "weighted_majority", "toy", "last")


def test_problem_flops_components():
    r = record()
    f = problem_flops(r, 3, POLICY, PRM)
    assert f.policy_prefill == prefill_flops(POLICY, 4)  # the prompt once per question
    assert f.policy_decode == 3 * decode_flops(POLICY, 4, 5)
    assert f.prm == 3 * scoring_flops(PRM, 9)
    assert problem_flops(r, 3, POLICY, None).prm == 0


def test_metrics_rows_cover_budgets_aggregations_subsets():
    records = [record(1), record(4)]
    rows = metrics_rows(records, dataset="toy", model="m", strategy="sampling", seed=0, budgets=[1, 2, 4],
                        aggregations=["majority", "best_of_n"], reduction="last", grader="toy", policy=POLICY, prm=PRM)
    assert len(rows) == 3 * 3 * 2  # budgets x subsets (all, easy, hard) x aggregations
    by = {(r["n"], r["subset"], r["aggregation"]): r for r in rows}
    assert by[(4, "all", "best_of_n")]["accuracy"] == 1.0
    assert by[(4, "all", "majority")]["error"] == 1.0
    assert by[(1, "easy", "majority")]["n_problems"] == 1
    assert by[(2, "all", "majority")]["policy_decode_flops"] == 2 * decode_flops(POLICY, 4, 5)
    r = by[(2, "all", "majority")]
    assert r["policy_flops"] == r["policy_prefill_flops"] + r["policy_decode_flops"]
    assert r["total_flops"] == r["policy_flops"] + r["prm_flops"]
    assert r["params"] == 1000 and r["generated_tokens"] == 10


def test_subsets_need_levels_everywhere():
    assert set(subsets([record(1), record(3)])) == {"all", "easy", "hard"}
    no_level = record()
    no_level["level"] = None
    assert set(subsets([record(1), no_level])) == {"all"}


def test_tree_search_flops_count_every_node_and_prm_read():
    tree_record = {**record(), "cost": {"decode": [[4, 3], [7, 3], [7, 2], [10, 5]], "prm_tokens": [8, 8, 11, 15]}}
    f = problem_flops(tree_record, 4, POLICY, PRM)
    assert f.policy_prefill == prefill_flops(POLICY, 4)
    assert f.policy_decode == sum(decode_flops(POLICY, c, g) for c, g in [[4, 3], [7, 3], [7, 2], [10, 5]])
    assert f.prm == sum(scoring_flops(PRM, t) for t in [8, 8, 11, 15])
    # All finished paths are the candidates of a tree search, whatever n it ran at.
    assert problem_correct(tree_record, 4, "best_of_n", "toy", "last")
    rows = metrics_rows([tree_record], dataset="toy", model="m", strategy="rebase", seed=0, budgets=[4],
                        aggregations=["majority"], reduction="last", grader="toy", policy=POLICY, prm=PRM)
    assert rows[0]["generated_tokens"] == 13
