import json
import math

import pytest

from infscale.evaluation.evaluation import (
    invalid_share,
    metrics_rows,
    problem_correct,
    problem_flops,
    problem_flops_prefix_shared,
    problem_rows,
    subsets,
    verifier_auc,
)
from infscale.evaluation.flops import ModelShape, decode_flops, prefill_flops, scoring_flops

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
    assert f.policy_prefill == 3 * prefill_flops(POLICY, 4)  # the paper's convention: each candidate its prompt
    assert f.policy_decode == 3 * decode_flops(POLICY, 4, 5)
    assert f.prm == 3 * scoring_flops(PRM, 9)
    assert problem_flops(r, 3, POLICY, None).prm == 0
    shared = problem_flops_prefix_shared(r, 3, POLICY, PRM)  # what a prefix cache spends: the prompt once
    assert shared.policy_prefill == prefill_flops(POLICY, 4)
    assert shared.policy_decode == f.policy_decode and shared.prm == f.prm


def test_sampling_flops_are_n_times_one_candidate():
    # Candidates of different lengths: the cost of n is n times the mean candidate of the problem, exactly
    # proportional to n as in the paper's Tables 1, 3 and 4 (the first n candidates' own lengths would make the
    # ratio depend on which candidates came first).
    r = record()
    for c, tokens in zip(r["candidates"], [3, 9, 4, 8, 6]):
        c["tokens"] = tokens
    one = problem_flops(r, 1, POLICY, PRM)
    for n in (2, 4, 5):
        f = problem_flops(r, n, POLICY, PRM)
        assert f.policy == pytest.approx(n * one.policy) and f.total == pytest.approx(n * one.total)
    mean_decode = sum(decode_flops(POLICY, 4, t) for t in [3, 9, 4, 8, 6]) / 5
    assert one.policy == pytest.approx(prefill_flops(POLICY, 4) + mean_decode)
    # prefix-shared: the first n candidates as generated, the prompt once
    assert problem_flops_prefix_shared(r, 2, POLICY, PRM).policy_decode == decode_flops(POLICY, 4, 3) + \
        decode_flops(POLICY, 4, 9)


# The paper's Table 4 (FLOPs per question, x 1e12): greedy, and sampling at 32 samples (8 for Llemma-34B).
PAPER_TABLE4 = {"Mistral-7B": (3.4, 109.2, 2.3, 72.6, 32), "Llemma-7B": (3.92, 125.4, 2.3, 73.9, 32),
                "Llama3-8B": (3.84, 122.9, 2.28, 73.2, 32), "Llemma-34B": (19.0, 152.3, 11.2, 89.7, 8)}


@pytest.mark.parametrize("model", PAPER_TABLE4)
def test_the_papers_table4_is_n_times_greedy_and_so_are_ours(model):
    math_greedy, math_sampling, gsm_greedy, gsm_sampling, n = PAPER_TABLE4[model]
    assert math_sampling / math_greedy == pytest.approx(n, rel=0.01)
    assert gsm_sampling / gsm_greedy == pytest.approx(n, rel=0.02)  # 2.3 is rounded to two digits
    # A 7B-like shape; a greedy solution and n samples of the same length (the paper's convention).
    shape = ModelShape(non_embedding_params=7_000_000_000, n_layer=32, d_attn=4096)
    greedy = {"id": "q", "reference": "1", "prompt_tokens": 80, "candidates": [cand("1", [0.5], tokens=240)]}
    sampled = {**greedy, "candidates": [cand("1", [0.5], tokens=240) for _ in range(n)]}
    assert problem_flops(sampled, n, shape, None).policy == pytest.approx(n * problem_flops(greedy, 1, shape, None).policy)
    # prefix sharing would not: the prompt read once makes n samples cheaper than n greedy solutions
    assert problem_flops_prefix_shared(sampled, n, shape, None).policy < n * problem_flops(greedy, 1, shape, None).policy


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
    assert r["policy_flops_prefix_shared"] == r["policy_flops"] - prefill_flops(POLICY, 4)
    assert r["invalid_share"] == 0.0 and by[(4, "all", "majority")]["invalid_share"] == 0.25
    assert r["total_flops"] == r["policy_flops"] + r["prm_flops"]
    assert r["params"] == 1000 and r["generated_tokens"] == 10


def test_subsets_need_levels_everywhere():
    assert set(subsets([record(1), record(3)])) == {"all", "easy", "hard"}
    no_level = record()
    no_level["level"] = None
    assert set(subsets([record(1), no_level])) == {"all"}


def test_tree_search_flops_count_every_node_and_prm_read():
    tree = [{"id": 0, "parent": None}, {"id": 1, "parent": None}, {"id": 2, "parent": 0}, {"id": 3, "parent": 2},
            {"id": 4, "parent": None}]
    tree_record = {**record(), "tree": tree,
                   "cost": {"decode": [[4, 3], [4, 3], [7, 2], [9, 5]], "prm_tokens": [8, 8, 11, 15]}}
    f = problem_flops(tree_record, 4, POLICY, PRM)
    assert f.policy_prefill == 3 * prefill_flops(POLICY, 4)  # once per beam started at the root
    assert problem_flops_prefix_shared(tree_record, 4, POLICY, PRM).policy_prefill == prefill_flops(POLICY, 4)
    assert f.policy_decode == sum(decode_flops(POLICY, c, g) for c, g in [[4, 3], [4, 3], [7, 2], [9, 5]])
    assert f.prm == sum(scoring_flops(PRM, t) for t in [8, 8, 11, 15])
    # All finished paths are the candidates of a tree search, whatever n it ran at.
    assert problem_correct(tree_record, 4, "best_of_n", "toy", "last")
    rows = metrics_rows([tree_record], dataset="toy", model="m", strategy="rebase", seed=0, budgets=[4],
                        aggregations=["majority"], reduction="last", grader="toy", policy=POLICY, prm=PRM)
    assert rows[0]["generated_tokens"] == 13


def test_subset_accuracy_is_over_the_subsets_own_problems():
    right, wrong = record(1), record(4)
    for c in right["candidates"]:
        c["answer"] = "5"
    rows = metrics_rows([right, wrong, record(5)], dataset="toy", model="m", strategy="sampling", seed=0,
                        budgets=[1], aggregations=["majority"], reduction="last", grader="toy", policy=POLICY, prm=PRM)
    by = {r["subset"]: r for r in rows}
    assert (by["easy"]["accuracy"], by["easy"]["n_problems"]) == (1.0, 1)
    assert (by["hard"]["accuracy"], by["hard"]["n_problems"]) == (0.0, 2)
    assert by["all"]["accuracy"] == pytest.approx(1 / 3)


def test_invalid_candidates_never_vote_and_are_counted():
    r = record()
    # four candidates without a stated answer and one right one: the right one wins every aggregation
    r["candidates"] = [cand(None, [0.99]) for _ in range(4)] + [cand("5", [0.01])]
    for aggregation in ("majority", "weighted_majority", "best_of_n"):
        assert problem_correct(r, 5, aggregation, "toy", "last")
    assert invalid_share([r], 5) == 0.8 and invalid_share([r], 2) == 1.0


def test_verifier_auc_within_problems():
    r = record()  # right "5" scores 0.9; wrong ones 0.2, 0.3, 0.1 and the answerless 1.0 (wrong)
    auc, problems = verifier_auc([r], 5, "toy", "last")
    assert problems == 1 and auc == pytest.approx(3 / 4)
    del r["candidates"][0]["step_scores"]
    assert verifier_auc([r], 5, "toy", "last")[1] == 0


def test_problem_rows_and_the_theorem_halves():
    r = record()
    r["candidates"] = [cand("5", [0.9]), cand("5", [0.8]), cand("7", [0.1]), cand("7", [0.2])]
    rows = problem_rows([r], dataset="toy", model="m", strategy="sampling", seed=3, budgets=[1, 4],
                        aggregations=["majority", "best_of_n"], reduction="last", grader="toy")
    budget = {(x["n"], x["aggregation"]): x["correct"] for x in rows if x["kind"] == "budget"}
    assert budget == {(1, "majority"): 1, (1, "best_of_n"): 1, (4, "majority"): 1, (4, "best_of_n"): 1}
    halves = {(x["kind"], x["aggregation"]): (x["n"], x["correct"]) for x in rows if x["kind"] != "budget"}
    # first half votes 5 (right), the other half 7 (wrong); best-of-n has no limit theorem
    assert halves == {("limit_predicted", "majority"): (2, 1), ("half_measured", "majority"): (2, 0)}
    assert all(x["seed"] == 3 and x["id"] == "p" for x in rows)


def test_model_shape_reads_a_checkpoint_config_without_weights(tmp_path):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from infscale.core.models import non_embedding_params_of
    from infscale.evaluation.evaluation import model_shape

    config = GPTNeoXConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=64)
    config.save_pretrained(tmp_path)
    shape = model_shape(str(tmp_path))
    assert (shape.n_layer, shape.d_attn) == (3, 16)
    assert shape.non_embedding_params == non_embedding_params_of(GPTNeoXForCausalLM(config)) > 0


def test_model_shape_takes_the_count_training_recorded(tmp_path, tokenizer_dir):
    """A trained checkpoint's summary holds its exact count (taken before any sharding): the metrics read it
    instead of building the model, and it is the count the model has."""
    from transformers import GPTNeoXForCausalLM

    from infscale.core.models import build_causal_lm, non_embedding_params_of
    from infscale.evaluation.evaluation import model_shape
    from infscale.training.sft import train_policy
    from infscale.training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    model = build_causal_lm({"hidden_size": 16, "num_layers": 2, "num_heads": 2}, tok, 0)
    rows = [{"question": "Compute 2 + 3.", "solution": "Step 1: 2 + 3 = 5 ки\nThe answer is: 5 ки"}] * 4
    train_policy(rows, tok, model, {"steps": 1, "batch_size": 2, "lr": 1e-3}, tmp_path / "m", seed=0)
    summary = json.loads((tmp_path / "m" / "training_summary.json").read_text())
    exact = non_embedding_params_of(GPTNeoXForCausalLM.from_pretrained(tmp_path / "m"))
    assert summary["non_embedding_params"] == exact
    summary["non_embedding_params"] = 12345  # what model_shape reads, not a recount
    (tmp_path / "m" / "training_summary.json").write_text(json.dumps(summary))
    shape = model_shape(str(tmp_path / "m"))
    assert (shape.non_embedding_params, shape.n_layer, shape.d_attn) == (12345, 2, 16)


def test_the_configured_reduction_weighs_the_candidates():
    r = record()
    # last step scores favour 7; the min over steps favours 5
    r["candidates"] = [cand("7", [0.1, 0.9]), cand("7", [0.1, 0.8]), cand("5", [0.6, 0.7])]
    assert not problem_correct(r, 3, "best_of_n", "toy", "last")
    assert problem_correct(r, 3, "best_of_n", "toy", "min")
    assert problem_correct(r, 3, "weighted_majority", "toy", "min")


def test_equal_answers_in_other_forms_vote_together():
    r = {**record(), "reference": "1250"}
    r["candidates"] = [cand("1,250", [0.5]), cand("7", [0.5]), cand("1250", [0.5]), cand("7", [0.5]),
                       cand("1250.0", [0.5])]
    assert problem_correct(r, 5, "majority", "gsm8k", "last")  # 3 votes for 1250 against 2 for 7


def test_a_tree_search_uses_all_its_finished_paths_whatever_n():
    tree_record = {**record(), "tree": [], "cost": {"decode": [[4, 3]], "prm_tokens": [8]}}
    # five finished paths at budget 2: best-of-n sees the right one, the third
    assert problem_correct(tree_record, 2, "best_of_n", "toy", "last")
    assert invalid_share([tree_record], 2) == 0.2
    assert math.isnan(invalid_share([{**record(), "candidates": [], "cost": {}}], 1))


def test_metrics_rows_carry_every_column_with_its_value():
    rows = metrics_rows([record(1), record(4)], dataset="toy", model="m", strategy="sampling", seed=3, budgets=[3],
                        aggregations=["majority"], reduction="last", grader="toy", policy=POLICY, prm=PRM)
    r = next(x for x in rows if x["subset"] == "all")
    assert {k: r[k] for k in ("dataset", "model", "strategy", "n", "seed", "aggregation", "n_problems")} == \
        {"dataset": "toy", "model": "m", "strategy": "sampling", "n": 3, "seed": 3, "aggregation": "majority",
         "n_problems": 2}
    assert r["error"] == pytest.approx(1 - r["accuracy"])
    one = problem_flops(record(), 3, POLICY, PRM)
    assert r["prm_flops"] == pytest.approx(one.prm) and r["prm_flops"] > 0
    shared = problem_flops_prefix_shared(record(), 3, POLICY, PRM)
    assert r["total_flops_prefix_shared"] == pytest.approx(shared.total)
    # the first three candidates: the right 5 (0.9) outscores both wrong 7s (0.2, 0.3), in both problems
    assert r["prm_auc"] == pytest.approx(1.0) and r["prm_auc_problems"] == 2
