"""The compute estimate of a study (README "Reproducing the paper" quotes it for config/paper.yaml)."""
import copy
from pathlib import Path

import pytest
import yaml

from infscale.config import validate_config
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
