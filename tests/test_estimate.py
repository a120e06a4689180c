"""The compute estimate of a study (docs/paper.md quotes it for config/paper.yaml)."""
import copy
from pathlib import Path

import pytest
import yaml

from infscale.core.validation import validate_config
from infscale.estimate import TRAIN_DATA, estimate, main, training_flops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def paper():
    return validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))


def test_training_is_6n_per_token():
    rows, tokens = TRAIN_DATA["metamath"]
    assert training_flops(7_000_000_000, {"epochs": 1, "batch_size": 128}, "metamath") == 6 * 7e9 * rows * tokens
    assert training_flops(10, {"steps": 3, "batch_size": 4}, "metamath") == 6 * 10 * 12 * tokens


def test_paper_estimate_has_every_stage(paper):
    stages = {s.stage: s for s in estimate(paper)}
    assert set(stages) == {"train_policy", "train_prm", "generate", "score"}
    assert stages["generate"].jobs == 257 and stages["train_policy"].jobs == 9
    assert stages["score"].jobs == 47  # sampled runs only: a tree search scores inside its generate job
    assert all(s.flops > 0 and s.gpu_hours() > 0 for s in stages.values())


def test_generation_scales_with_seeds(paper):
    more = copy.deepcopy(paper)
    more["seeds"] = paper["seeds"] * 2
    gen = {s.stage: s.flops for s in estimate(paper)}
    gen2 = {s.stage: s.flops for s in estimate(more)}
    greedy_share = gen2["generate"] < 2 * gen["generate"]  # greedy runs once whatever the seeds
    assert greedy_share and gen2["generate"] > 1.9 * gen["generate"] and gen2["train_policy"] == gen["train_policy"]


def test_missing_params_names_the_key(paper):
    del paper["models"]["llemma-7b"]["params"]
    with pytest.raises(ValueError, match="models.llemma-7b.params"):
        estimate(paper)


def test_command_prints_a_table(capsys):
    main([str(ROOT / "config" / "paper.yaml")])
    out = capsys.readouterr().out
    assert out.startswith("| stage | jobs | FLOPs | GPU hours |") and "| total |" in out


def test_fp32_training_runs_at_the_fp32_peak(paper):
    """Table 2's FP32 runs do not reach the BF16 peak: fp32 weights without mixed precision count at FP32's."""
    from infscale.estimate import H100_BF16_TFLOPS, H100_FP32_TFLOPS, Stage, training_part

    fp32 = {"epochs": 1, "batch_size": 128, "dtype": "fp32"}
    hours = {k: Stage("t", 1, 1e20, [training_part(1e20, t)]).gpu_hours() for k, t in
             {"fp32": fp32, "mixed": {**fp32, "mixed_precision": "bf16"}, "bf16": {**fp32, "dtype": "bf16"}}.items()}
    assert hours["fp32"] == pytest.approx(hours["mixed"] * H100_BF16_TFLOPS / H100_FP32_TFLOPS)
    assert hours["mixed"] == hours["bf16"]
    assert training_flops(10, {"steps": 1, "batch_size": 1, "gradient_checkpointing": True}, "metamath") == \
        8 * 10 * TRAIN_DATA["metamath"][1]  # the forward pass again


def test_tree_search_jobs_hold_their_gpus_while_the_prm_scores(paper):
    """A tree search's GPUs wait while the PRM scores: a larger PRM costs generate GPU hours, not only FLOPs."""
    bigger = copy.deepcopy(paper)
    bigger["prm"]["params"] = paper["prm"]["params"] * 2
    gen = {s.stage: s for s in estimate(paper)}["generate"]
    gen2 = {s.stage: s for s in estimate(bigger)}["generate"]
    assert gen2.flops == gen.flops and gen2.gpu_hours() > 1.3 * gen.gpu_hours()


def test_every_prm_call_reads_the_prompt_again(paper):
    from infscale.estimate import PROMPT_TOKENS, SOLUTION_TOKENS, generation_tokens

    generated, read = generation_tokens(paper, "gsm8k", "llemma-7b", "sampling")
    assert read == pytest.approx(generated * (PROMPT_TOKENS["gsm8k"] + SOLUTION_TOKENS["gsm8k"]) / SOLUTION_TOKENS["gsm8k"])
    g_tree, r_tree = generation_tokens(paper, "math500", "llemma-7b", "rebase")
    assert r_tree > 3 * g_tree  # each node re-reads the prompt and its path


def test_paper_estimate_counts_what_the_old_one_left_out(paper):
    total = sum(s.gpu_hours() for s in estimate(paper))
    assert total > 2 * 489  # the estimate before fp32 peaks, idle GPUs and prompt re-reads: 489 GPU hours
