"""The engine block: study-wide defaults, per-model overrides resolved in one place, bad keys named."""
import copy
from pathlib import Path

import pytest
import yaml

from infscale.core.config import ConfigError, engine_params
from infscale.core.validation import validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ci_config():
    return yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())


def test_study_wide_engine_defaults():
    c = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    del c["engine"]
    validate_config(c)
    assert c["engine"] == {"name": "transformers", "batch_size": 64}
    assert engine_params(c, "tiny-a") == {"batch_size": 64, "name": "transformers"}
    assert "engine" not in c["models"]["tiny-a"]  # an override block gets no defaults of its own


def test_model_engine_overrides_key_by_key(ci_config):
    c = copy.deepcopy(ci_config)
    c["engine"] = {"name": "transformers", "batch_size": 32, "gpu_memory_utilization": 0.7}
    c["models"]["tiny-b"]["engine"] = {"name": "vllm", "max_model_len": 512, "gpu_memory_utilization": 0.5}
    validate_config(c)
    assert engine_params(c, "tiny-a") == {"name": "transformers", "batch_size": 32, "gpu_memory_utilization": 0.7}
    assert engine_params(c, "tiny-b") == {"name": "vllm", "batch_size": 32, "gpu_memory_utilization": 0.5,
                                          "max_model_len": 512}
    assert list(engine_params(c, "tiny-b")) == sorted(engine_params(c, "tiny-b"))  # params compare as text


@pytest.mark.parametrize("where, block, message", [
    ("engine", {"name": "tgi"}, "config key engine.name"),
    ("engine", {"gpu_memory_utilization": 1.5}, "config key engine.gpu_memory_utilization"),
    ("model", {"gpu_memory_utilisation": 0.5}, "config key models.tiny-a.engine: unknown key"),
    ("model", {"max_model_len": 0}, "config key models.tiny-a.engine.max_model_len"),
    ("model", {"dtype": "float64"}, "config key models.tiny-a.engine.dtype"),
])
def test_bad_engine_keys_are_named(ci_config, where, block, message):
    c = copy.deepcopy(ci_config)
    if where == "engine":
        c["engine"].update(block)
    else:
        c["models"]["tiny-a"]["engine"] = block
    with pytest.raises(ConfigError, match=message):
        validate_config(c)
