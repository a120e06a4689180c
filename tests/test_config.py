import copy
from pathlib import Path

import pytest
import yaml

from infscale.core.config import ConfigError, budgets, generation_runs, job_resources, seeds_for, strategy_params
from infscale.core.validation import validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ci_config():
    return yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "config/ci.yaml"])
def test_shipped_configs_validate(name):
    validate_config(yaml.safe_load((ROOT / name).read_text()))


def test_defaults_are_filled(ci_config):
    c = validate_config(ci_config)
    assert c["evaluate"]["aggregations"] == ["majority", "weighted_majority", "best_of_n"]
    assert c["models"]["tiny-a"]["arch"]["rotary_pct"] == 0.25
    assert c["report"]["x"] == "policy_flops"


def _mutated(config, path, value):
    c = copy.deepcopy(config)
    node = c
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return c


@pytest.mark.parametrize("path, value, message", [
    (["models", "tiny-a", "train", "stpes"], 5, r"models.tiny-a.train: unknown key\(s\) stpes"),
    (["models", "tiny-a", "train", "lr"], "fast", r"models.tiny-a.train.lr: 'fast' is not of type 'number'"),
    (["strategies", "sampling", "budgets"], [1, 0], r"strategies.sampling.budgets.1: 0 is less than the minimum"),
    (["strategies", "sampling", "budgets"], [1, 2.5], r"strategies.sampling.budgets.1: 2.5 is not of type 'integer'"),
    (["evaluate", "strategies"], ["greedy", "beam"], r"evaluate.strategies\[1\]: unknown strategy 'beam'"),
    (["evaluate", "models"], ["tiny-a", "tiny-c"], r"evaluate.models\[1\]: unknown model slug 'tiny-c'"),
    (["prm", "policy"], "gpt2", r"prm.policy: unknown model slug 'gpt2'"),
    (["tokenizer", "dataset"], "gsm8k", r"tokenizer.dataset: unknown dataset slug 'gsm8k'"),
    (["seeds"], [0, -1], r"seeds.1: -1 is less than the minimum"),
    (["datasets", "toy", "source"], "web", r"datasets.toy.source: 'web' is not one of"),
    (["wrong_top"], 1, r"<top level>: unknown key\(s\) wrong_top"),
    (["prm_ablations", "prm-ci", "train"], KeyError,
     r"prm_ablations.prm-ci.train: required when prm_ablations.prm-ci.source is rollouts"),
    (["prm_ablations", "prm-ci", "policy"], "gpt2", r"prm_ablations.prm-ci.policy: unknown model slug 'gpt2'"),
    (["prm_ablations", "likelihood-ci"], {"source": "policy_likelihood", "policy": "tiny-a"},
     r"prm_ablations.likelihood-ci: the name of the study's own verifier"),
    (["prm", "policy"], KeyError, r"prm.policy: required when prm.source is policy_likelihood"),
    (["prm", "token_score"], "entropy", r"prm.token_score: 'entropy' is not one of"),
    (["prm", "calibration"], {"b": 0}, r"prm.calibration.b: 0 is less than or equal to the minimum"),
    (["datasets", "toy", "toy", "carry_rate"], 0.5, r"datasets.toy.toy.carry_free: every_order .* needs carry_rate 0"),
    (["datasets", "toy", "toy", "order"], "sorted", r"datasets.toy.toy.order: 'sorted' is not one of"),
    (["resources"], {"genrate": {"gpu": 1}}, r"resources: 'genrate' is not one of"),
    (["resources"], {"generate": {"gpus": 1}}, r"resources.generate: unknown key\(s\) gpus"),
    (["datasets", "choice"], {"source": "toy", "grader": "toy"}, r"datasets.choice: a data set may not be named"),
])
def test_bad_config_names_the_key(ci_config, path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_mutated(ci_config, path, value))


def test_strategy_needs_its_block(ci_config):
    del ci_config["strategies"]["mcts"]
    with pytest.raises(ConfigError, match="strategies.mcts: required to evaluate mcts"):
        validate_config(ci_config)


def test_bad_slug_is_rejected(ci_config):
    ci_config["models"]["EleutherAI/pythia-70m"] = ci_config["models"].pop("tiny-a")
    with pytest.raises(ConfigError, match="models"):
        validate_config(ci_config)


def test_per_model_sampling_override(ci_config):
    ci_config["models"]["tiny-b"]["sampling"] = {"temperature": 0.7}
    c = validate_config(ci_config)
    assert strategy_params(c, "tiny-b", "sampling")["temperature"] == 0.7
    assert strategy_params(c, "tiny-a", "sampling")["temperature"] == 1.0
    assert generation_runs(c, "tiny-a", "sampling") == [(4, [1, 2, 4])]  # once at the largest budget
    assert generation_runs(c, "tiny-a", "greedy") == [(1, [1])]
    assert generation_runs(c, "tiny-a", "rebase") == [(n, [n]) for n in c["strategies"]["rebase"]["budgets"]]
    assert budgets(c, "tiny-a", "sampling") == [1, 2, 4]
    assert seeds_for(c, "greedy") == [0] and seeds_for(c, "sampling") == [0, 1]


def test_canonical_key_order_is_stable(ci_config):
    from infscale.core.config import canonical

    reordered = yaml.safe_load(yaml.safe_dump(ci_config, sort_keys=True))
    assert repr(canonical(validate_config(reordered))) == repr(canonical(validate_config(ci_config)))


def test_job_resources_layer_study_rule_and_model(ci_config):
    ci_config["threads"] = 2
    ci_config["resources"] = {"default": {"runtime": 30}, "generate": {"gpu": 1, "mem_mb": 16000}}
    ci_config["models"]["tiny-b"]["resources"] = {"generate": {"gpu": 2, "threads": 8}, "default": {"runtime": 90}}
    c = validate_config(ci_config)
    assert job_resources(c, "generate", "tiny-a") == {"gpu": 1, "mem_mb": 16000, "runtime": 30, "threads": 2}
    assert job_resources(c, "generate", "tiny-b") == {"gpu": 2, "mem_mb": 16000, "runtime": 90, "threads": 8}
    # mem_mb is set for generate only; other rules don't ask for it, and nothing asks for a GPU unless told
    assert job_resources(c, "train_prm") == {"gpu": 0, "runtime": 30, "threads": 2}


def test_job_resources_without_config_ask_for_nothing(ci_config):
    c = validate_config(ci_config)
    assert job_resources(c, "train_policy", "tiny-a") == {"gpu": 0, "threads": 1}


def test_missing_local_data_file_names_key_and_path(ci_config, tmp_path):
    ci_config["datasets"]["gsm8k"] = {"source": "jsonl", "grader": "gsm8k",
                                      "files": {"test": str(tmp_path / "gsm8k_tset.jsonl")}}
    with pytest.raises(ConfigError, match=r"datasets.gsm8k.files.test: no such file '.*gsm8k_tset.jsonl'"):
        validate_config(ci_config)


@pytest.mark.parametrize("source", ["./models/my-policy", "/nonexistent/llemma-7b", "my-policy"])
def test_missing_local_model_path_names_key_and_path(ci_config, source):
    ci_config["models"]["released"] = {"checkpoint": source}
    with pytest.raises(ConfigError, match=rf"models.released.checkpoint: model path '{source}' does not exist"):
        validate_config(ci_config)


def test_hub_ids_are_not_looked_up_at_planning(ci_config):
    ci_config["models"]["released"] = {"checkpoint": "tkitsers/Llemma-metamath-7b"}
    validate_config(ci_config)  # no network, no error: the fetch job loads it


def test_the_config_reference_is_current_with_the_schema():
    """docs/config.md is generated from the schema (python -m infscale.config_reference > docs/config.md)."""
    from infscale.config_reference import render

    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    assert doc == render(), "docs/config.md is stale: python -m infscale.config_reference > docs/config.md"
    for key in ("`report.table1.rebase_budget`", "`report.claims.auc_gate`", "`strategies.rebase.allocation`"):
        assert key in doc


def _enums(node, path=""):
    """(path, enum list) of every enum in the schema."""
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield path, node["enum"]
        for k, v in node.items():
            yield from _enums(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _enums(v, f"{path}[{i}]")


def test_the_schema_names_what_the_code_defines():
    """The schema is static YAML (package data); the names it lists must be the code's own lists: aggregations
    (aggregation.AGGREGATIONS, one YAML anchor in the schema), step-score reductions, strategies, engines."""
    from infscale.core.config import STRATEGIES
    from infscale.core.validation import SCHEMA_PATH
    from infscale.evaluation.aggregation import AGGREGATIONS, REDUCTIONS
    from infscale.search.engines import ENGINE_OPTIONS

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    enums = list(_enums(schema))
    aggregation_enums = [p for p, e in enums if "majority" in e]
    assert len(aggregation_enums) == 3, aggregation_enums  # evaluate.aggregations, report.*, figures.*
    assert all(e == list(AGGREGATIONS) for p, e in enums if "majority" in e)
    props = schema["properties"]
    assert props["evaluate"]["properties"]["aggregations"]["default"] == list(AGGREGATIONS)
    assert props["evaluate"]["properties"]["reduction"]["enum"] == list(REDUCTIONS)
    assert tuple(props["strategies"]["properties"]) == STRATEGIES
    assert [e for p, e in enums if "vllm" in e] == [list(ENGINE_OPTIONS)]
