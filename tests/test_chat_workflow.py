"""The pipeline end to end with today's kind of models: a released chat-template policy (a tiny Qwen2 with the
Qwen2.5-Instruct special tokens and chat template, two sizes) used as it is, and a released Qwen2.5-Math-PRM-style
verifier (family qwen_prm), both local checkpoints made here, through the figures, the claims and the answer table."""
import json

import pandas as pd
import pytest
import yaml
from chat_models import save_chat_policy
from workflow_runs import snakemake

from infscale.core.policy_format import PolicyFormat
from infscale.core.tiny_checkpoints import build_qwen_prm
from infscale.reporting.claims import VERDICTS

pytestmark = pytest.mark.workflow

FORMAT = {"prompt": "chat", "system": "Please reason step by step, and put your final answer within \\boxed{}.",
          "step_delimiter": "\n\n", "answer": "boxed", "stop": "eos"}
LIMITS = {"max_step_tokens": 12, "max_solution_tokens": 48, "max_depth": 6}


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("chat-run")
    small = save_chat_policy(work / "ckpt" / "chat-small", seed=0, hidden_size=32)
    large = save_chat_policy(work / "ckpt" / "chat-large", seed=1, hidden_size=64, layers=2)
    prm = build_qwen_prm(work / "ckpt" / "qwen-prm")
    config = {
        "seeds": [0],
        "threads": 1,
        "datasets": {"toy": {"source": "toy", "grader": "toy",
                             "toy": {"n_train": 10, "n_prm": 2, "n_test": 6, "seed": 0, "levels": [1, 5]}}},
        "models": {"chat-small": {"checkpoint": str(small), "format": FORMAT},
                   "chat-large": {"checkpoint": str(large), "format": FORMAT}},
        "prm": {"name": "qwen-prm", "source": "checkpoint", "checkpoint": str(prm), "family": "qwen_prm"},
        "engine": {"name": "transformers", "batch_size": 64},
        "strategies": {"greedy": {"max_new_tokens": 48},
                       "sampling": {"temperature": 1.0, "max_new_tokens": 48, "budgets": [1, 2, 4]},
                       "rebase": {"budgets": [2, 4], **LIMITS},
                       "beam_search": {"budgets": [2], "beam_width": 2, **LIMITS},
                       "dvts": {"budgets": [4], "beam_width": 2, **LIMITS}},
        "evaluate": {"datasets": ["toy"], "models": ["chat-small", "chat-large"],
                     "strategies": ["greedy", "sampling", "rebase", "beam_search", "dvts"]},
    }
    path = work / "chat.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(work, "--cores", "2", config=path)
    assert result.returncode == 0, result.stderr[-4000:]
    return work


def test_chat_policy_and_qwen_prm_run_through_figures_claims_and_the_answer_table(chat_run):
    r = chat_run / "results"
    for name in ("error_vs_flops_toy_chat-small", "compute_optimal_toy", "strategies_toy_chat-large_best_of_n"):
        assert (r / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert len(pd.read_csv(r / "tables" / f"{name}.csv")) > 0
    claims = pd.read_csv(r / "claims.csv")
    assert len(claims) > 0 and set(claims["verdict"]) <= set(VERDICTS)
    assert len(pd.read_csv(r / "tables" / "compute_optimal_choice.csv")) > 0


def test_candidates_are_chat_prompted_steps_scored_by_the_prm_at_each_step(chat_run):
    fmt = PolicyFormat(**FORMAT)
    r = chat_run / "results"
    rebase = [json.loads(line) for line in
              (r / "scored" / "toy" / "chat-small" / "rebase" / "n4" / "seed0.jsonl").read_text().splitlines()]
    candidates = [c for rec in rebase for c in rec["candidates"]]
    assert candidates, "REBASE finished no path"
    for c in candidates:  # one PRM score per step of the policy's format; the path ended by the end of turn
        assert len(c["step_scores"]) == len(fmt.split_steps(c["text"])) >= 1
        assert all(0.0 <= s <= 1.0 for s in c["step_scores"])
    # the policy read its chat template: far more prompt tokens than the toy question's words
    assert all(rec["prompt_tokens"] > 2 * len(rec["question"].split()) for rec in rebase)
    sampled = [json.loads(line) for line in
               (r / "scored" / "toy" / "chat-large" / "sampling" / "n4" / "seed0.jsonl").read_text().splitlines()]
    for rec in sampled:
        for c in rec["candidates"]:
            assert len(c["step_scores"]) == len(fmt.split_steps(c["text"]))
            assert c["prm_tokens"] > rec["prompt_tokens"] // 2  # the PRM's own template tokens are counted
