"""Config validation: JSON schema with defaults, then cross-references; every error names the config key."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from .strategies import PREFIX_STRATEGIES, STRATEGIES

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def _validator_with_defaults(schema: dict):
    """A jsonschema validator that also fills in `default` values of properties (at every depth)."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate in place (filling defaults) and return the config; raise ConfigError naming the key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _validator_with_defaults(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        key = _key(e.path)
        if e.validator == "additionalProperties":
            extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            raise ConfigError(f"config key {key}: unknown key(s) {', '.join(extra)}")
        raise ConfigError(f"config key {key}: {e.message}")
    check_references(config)
    return config


def canonical(obj):
    """The same config with every mapping's keys sorted. Snakemake compares a job's params by their text, so
    a config written with its keys in another order (yaml.safe_dump sorts them) must not look changed."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def check_references(config: dict) -> None:
    """Slugs used in one place must be defined in another; strategies must exist."""
    datasets, models = config["datasets"], config["models"]

    def need(kind: str, known: dict, slug: str, key: str):
        if slug not in known:
            raise ConfigError(f"config key {key}: unknown {kind} slug {slug!r}; defined: {', '.join(known)}")

    need("dataset", datasets, config["tokenizer"]["dataset"], "tokenizer.dataset")
    for slug, m in models.items():
        need("dataset", datasets, m["sft_dataset"], f"models.{slug}.sft_dataset")
    need("model", models, config["prm"]["policy"], "prm.policy")
    need("dataset", datasets, config["prm"]["dataset"], "prm.dataset")
    if not config["prm"]["init_from_policy"] and "arch" not in config["prm"]:
        raise ConfigError("config key prm.arch: required when prm.init_from_policy is false")
    ev = config["evaluate"]
    for i, d in enumerate(ev["datasets"]):
        need("dataset", datasets, d, f"evaluate.datasets[{i}]")
    for i, m in enumerate(ev["models"]):
        need("model", models, m, f"evaluate.models[{i}]")
    for i, s in enumerate(ev["strategies"]):
        if s not in STRATEGIES:
            raise ConfigError(f"config key evaluate.strategies[{i}]: unknown strategy {s!r}; known: {', '.join(STRATEGIES)}")
    for strategy in ev["strategies"]:
        if strategy == "greedy":
            continue
        if strategy not in config["strategies"]:
            raise ConfigError(f"config key strategies.{strategy}: required to evaluate {strategy}")
        for slug in ev["models"]:
            params = strategy_params(config, slug, strategy)
            for field in ("temperature", "budgets") + (("max_new_tokens",) if strategy == "sampling" else ()):
                if field not in params:
                    raise ConfigError(f"config key strategies.{strategy}.{field}: required for {strategy}")
    for slug, d in datasets.items():
        if d["source"] == "jsonl" and "files" not in d:
            raise ConfigError(f"config key datasets.{slug}.files: required when source is jsonl")


def sampling_params_for(config: dict, model: str) -> dict:
    """strategies.sampling with the model's own overrides on top."""
    return {**config.get("strategies", {}).get("sampling", {}), **config["models"][model].get("sampling", {})}


def engine_params(config: dict, model: str) -> dict:
    """The engine block of one model: the study-wide `engine` with the model's own `engine` keys on top."""
    return canonical({**config["engine"], **config["models"][model].get("engine", {})})


def strategy_params(config: dict, model: str, strategy: str) -> dict:
    if strategy == "sampling":
        return sampling_params_for(config, model)
    return dict(config["strategies"][strategy])


def budgets(config: dict, model: str, strategy: str) -> list[int]:
    """The budgets n measured: samples (sampling), width (REBASE) or expansions (MCTS); greedy is n = 1."""
    return [1] if strategy == "greedy" else sorted(set(strategy_params(config, model, strategy)["budgets"]))


def generation_runs(config: dict, model: str, strategy: str) -> list[tuple[int, list[int]]]:
    """(n of the generation file, budgets it serves). Sampling is generated once at its largest budget and
    smaller budgets take its first candidates; a tree search is run once per budget."""
    b = budgets(config, model, strategy)
    if strategy in PREFIX_STRATEGIES:
        return [(max(b), b)]
    return [(n, [n]) for n in b]


def seeds_for(config: dict, strategy: str) -> list[int]:
    """Greedy decoding does not depend on the seed: one run is enough."""
    return config["seeds"][:1] if strategy == "greedy" else list(config["seeds"])
