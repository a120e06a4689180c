"""Bad input through the real workflow: config errors stop the run before any job and name the key; a malformed
data row fails its own job, names the file and line, and keeps what other jobs finished."""
import copy

import pytest
import yaml
from workflow_runs import ROOT, snakemake

pytestmark = pytest.mark.workflow

CI = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())


def with_change(path, value):
    config = copy.deepcopy(CI)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


@pytest.mark.parametrize("path, value, message", [
    (["models", "tiny-a", "trian"], {"steps": 1}, "config key models.tiny-a: unknown key(s) trian"),
    (["models", "tiny-a", "train", "steps"], "many", "config key models.tiny-a.train.steps: 'many' is not of type"),
    (["evaluate", "strategies"], ["greedy", "beam"], "config key evaluate.strategies[1]: unknown strategy"),
    (["evaluate", "models"], ["tiny-a", "tiny-z"], "config key evaluate.models[1]: unknown model slug 'tiny-z'"),
    (["strategies", "rebase", "budgets"], [2, 2, 4], "config key strategies.rebase.budgets: [2, 2, 4] has non-unique"),
    (["resources"], {"generate": {"gpu": -1}}, "config key resources.generate.gpu: -1 is less than the minimum"),
    (["shard_size"], 0, "config key shard_size: 0 is less than the minimum"),
    (["report"], {"table1": {"rebase_budget": 3}}, "config key report.table1.rebase_budget: 3 is not a rebase budget"),
])
def test_config_error_stops_the_run_before_any_job(tmp_path, path, value, message):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(with_change(path, value)))
    result = snakemake(tmp_path, "--cores", "1", config=config)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_malformed_data_row_names_file_and_line_and_keeps_finished_work(tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    row = '{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\\n#### 5"}\n'  # GSM8K's own format
    good.write_text(row)
    bad.write_text(row + '{"question": "What is 1 + 1?", "answer": 2\n')
    config = copy.deepcopy(CI)
    config["datasets"]["good"] = {"source": "jsonl", "grader": "gsm8k", "files": {"test": str(good)}}
    config["datasets"]["bad"] = {"source": "jsonl", "grader": "gsm8k", "files": {"test": str(bad)}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1", "--keep-going", "results/data/good/test.jsonl",
                       "results/data/bad/test.jsonl", config=path)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/prepare_data/bad_test.log").read_text()
    assert f"{bad}:2: malformed JSON" in log
    assert (tmp_path / "results/data/good/test.jsonl").exists()  # the other job's work is kept
    assert not (tmp_path / "results/data/bad/test.jsonl").exists()


@pytest.mark.parametrize("target, message", [
    ("results/figures/error_vs_flops_toy_tiny-z.png", "the target names model 'tiny-z', which the config does not "
                                                     "define; models defined: tiny-a, tiny-b"),
    ("results/figures/strategies_toy_tiny-a_plurality.png", "the target names aggregation 'plurality'"),
    ("results/metrics/toy/tiny-a/beam.csv", "the target names strategy 'beam'"),
    ("results/tables/table4_gsm8k.csv", "the target names dataset 'gsm8k', which the config does not define; "
                                        "datasets defined: toy"),
])
def test_a_target_with_an_unknown_name_says_what_the_config_defines(tmp_path, target, message):
    result = snakemake(tmp_path, "-n", target)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
