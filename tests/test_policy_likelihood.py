"""The policy-likelihood verifier (search/policy_likelihood.py): the default study's verifier, read off a policy's
own causal-LM head. Checked against a token-by-token recomputation with the model, on hand-made step scores, and
for the properties the aggregations rely on."""
import math

import pytest

from infscale.core.stepformat import STEP_TAG, format_prompt
from infscale.search.policy_likelihood import PolicyLikelihoodVerifier, calibrated, step_totals

QUESTION = "Compute 40 + 3 - 2."
SOLUTIONS = ["Step 1: 40 + 3 = 43 ки\nStep 2: 43 - 2 = 41 ки\nThe answer is: 41 ки",
             "Step 1: 40 - 2 = 38 ки\nStep 2: 38 + 3 = 41 ки\nThe answer is: 41",  # last tag missing: closed
             "Step 1: 40 + 3 = 44 ки"]


def test_step_totals_cover_the_tokens_after_the_previous_tag_through_the_own():
    scores = [-0.1, -2.0, -0.3, -0.2, -0.5, -0.05, -1.0]
    assert step_totals(scores, [2, 4, 6]) == [-2.0, -0.5, -1.0]
    assert step_totals(scores, [0, 6]) == [-0.1, -2.0]
    assert step_totals(scores, [2, 4, 6], "sum") == pytest.approx([-2.4, -0.7, -1.05])


def test_calibration_is_a_sigmoid_of_the_running_minimum_or_sum():
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    got = calibrated([-1.0, -3.0, -0.5], a=4.0, b=1.0)
    assert got == pytest.approx([sig(3.0), sig(1.0), sig(1.0)])  # a prefix stays as bad as its worst step
    assert calibrated([-2.0], a=0.0, b=2.0) == pytest.approx([sig(-4.0)])
    summed = calibrated([-1.0, -3.0, -0.5], a=4.0, b=1.0, reduction="sum")  # the prefix's log-likelihood
    assert summed == pytest.approx([sig(3.0), sig(0.0), sig(-0.5)])
    assert calibrated([-800.0], a=4.0, b=1.0) == [0.0]  # no overflow


def _brute_force(model_dir, question, solution, token_score, reduction="min"):
    """Token by token: each solution token's log-probability from its own forward pass over everything before it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    text = solution if solution.rstrip().endswith(STEP_TAG) else solution.rstrip() + " " + STEP_TAG
    prompt = tok.encode(format_prompt(question), add_special_tokens=False)
    sol = tok.encode(text, add_special_tokens=False)
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    ids = prompt + sol
    steps, current = [], []
    for t in range(len(prompt), len(ids)):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids[:t]])).logits[0, -1].double(), -1)
        x = float(logp[ids[t]] - (logp.max() if token_score == "margin" else 0.0))
        current.append(x)
        if ids[t] == tag:
            steps.append(min(current) if reduction == "min" else sum(current))
            current = []
    return steps


@pytest.mark.parametrize("token_score, reduction", [("logprob", "min"), ("margin", "min"), ("logprob", "sum")])
def test_step_scores_agree_with_a_token_by_token_recomputation(tiny_policy_dir, token_score, reduction):
    v = PolicyLikelihoodVerifier(str(tiny_policy_dir), a=4.0, b=1.0, token_score=token_score,
                                 step_reduction=reduction, batch_size=2)
    raw, tokens = v.raw_step_scores([QUESTION] * 3, SOLUTIONS)
    for solution, got in zip(SOLUTIONS, raw):
        want = _brute_force(tiny_policy_dir, QUESTION, solution, token_score, reduction)
        assert got == pytest.approx(want, abs=1e-4)
    assert [len(s) for s in raw] == [3, 3, 1]  # every step, the untagged last one too
    scores, tokens2 = v.score([QUESTION] * 3, SOLUTIONS)
    assert tokens2 == tokens and all(t > 10 for t in tokens)
    for s, r in zip(scores, raw):
        assert s == pytest.approx(calibrated(r, 4.0, 1.0, reduction))
        assert all(x >= y for x, y in zip(s, s[1:]))  # never rises: the last step's score is the minimum


def test_margin_is_the_log_probability_less_the_most_likely_tokens(tiny_policy_dir):
    lp = PolicyLikelihoodVerifier(str(tiny_policy_dir), token_score="logprob").raw_step_scores([QUESTION], SOLUTIONS[:1])
    mg = PolicyLikelihoodVerifier(str(tiny_policy_dir), token_score="margin").raw_step_scores([QUESTION], SOLUTIONS[:1])
    assert all(m <= 0 and m >= x for m, x in zip(mg[0][0], lp[0][0]))


def test_scores_do_not_depend_on_the_batch(tiny_policy_dir):
    alone = [PolicyLikelihoodVerifier(str(tiny_policy_dir), batch_size=1).score([QUESTION], [s])[0][0]
             for s in SOLUTIONS]
    together = PolicyLikelihoodVerifier(str(tiny_policy_dir), batch_size=8).score([QUESTION] * 3, SOLUTIONS)[0]
    for a, b in zip(alone, together):
        assert a == pytest.approx(b, abs=1e-5)


def test_a_batch_encodes_every_pair_as_the_tokenizer_does_alone(tiny_policy_dir):
    """encode_many reads a question's prompt once and the solutions in one tokenizer call (a tree search's hundreds
    of paths a depth): each pair's ids, solution start and tag positions are those of encoding it on its own, also
    with two questions interleaved and with the prompt cut to the context."""
    v = PolicyLikelihoodVerifier(str(tiny_policy_dir))
    tok = v.tokenizer
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    questions = [QUESTION, "Compute 7 + 5.", QUESTION]

    def alone(question, solution):
        text = solution if solution.rstrip().endswith(STEP_TAG) else solution.rstrip() + " " + STEP_TAG
        prompt = tok.encode(format_prompt(question), add_special_tokens=False)
        sol = tok.encode(text, add_special_tokens=False)
        return prompt, sol, [i for i, t in enumerate(sol) if t == tag]

    for (ids, start, tags), q, s in zip(v.encode_many(questions, SOLUTIONS), questions, SOLUTIONS):
        prompt, sol, want_tags = alone(q, s)
        assert (ids, start, tags) == (prompt + sol, len(prompt), want_tags)
    prompt, sol, _ = alone(QUESTION, SOLUTIONS[0])
    v.context_length = len(prompt) + len(sol) - 3  # the prompt loses its first 3 tokens
    assert v.encode_many([QUESTION], SOLUTIONS[:1])[0][:2] == (prompt[3:] + sol, len(prompt) - 3)
    assert v.encode_many([], []) == []


def test_unknown_options_name_the_config_key(tiny_policy_dir):
    with pytest.raises(ValueError, match="prm.token_score"):
        PolicyLikelihoodVerifier(str(tiny_policy_dir), token_score="entropy")
    with pytest.raises(ValueError, match="prm.step_reduction"):
        PolicyLikelihoodVerifier(str(tiny_policy_dir), step_reduction="mean")


def test_tree_siblings_read_their_shared_path_once_with_the_same_scores(tiny_policy_dir):
    """Siblings in a tree share the prompt and their parent's path: read once (prefix_scoring), scored as if each
    were read alone."""
    from infscale.search.prefix_scoring import plan_groups

    path = "Step 1: 40 + 3 = 43 ки\nStep 2: 43 - 2 = 41 ки\n"
    children = [path + f"Step 3: 41 + {k} = {41 + k} ки" for k in range(1, 6)] + [path + "The answer is: 41 ки"]
    v = PolicyLikelihoodVerifier(str(tiny_policy_dir), batch_size=16, token_score="margin")
    encoded = [v.encode(QUESTION, c)[0] for c in children]
    assert all(g.shared >= 20 for g in plan_groups(encoded) if len(g.members) > 1)  # they do share
    together, tokens = v.raw_step_scores([QUESTION] * len(children), children)
    alone = [PolicyLikelihoodVerifier(str(tiny_policy_dir), batch_size=1, token_score="margin")
             .raw_step_scores([QUESTION], [c])[0][0] for c in children]
    for a, b in zip(alone, together):
        assert a == pytest.approx(b, abs=1e-4)
    assert tokens == [len(e) for e in encoded]  # the paper's convention: every text counted whole
