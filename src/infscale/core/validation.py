"""Config validation: JSON schema with defaults, then cross-references; every error names the config key."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml

from infscale.core.config import (
    BEAM_STRATEGIES,
    DEFAULT_BEAM_WIDTH,
    STRATEGIES,
    ConfigError,
    budgets,
    model_kind,
    needs_tokenizer,
    strategy_params,
)

# Package data (importlib.resources), so validation works from an installed wheel as from a checkout.
SCHEMA_PATH = Path(str(resources.files("infscale") / "resources" / "config.schema.yaml"))


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


def check_references(config: dict) -> None:
    """Slugs used in one place must be defined in another; strategies must exist."""
    datasets, models = config["datasets"], config["models"]
    if "choice" in datasets:  # its compute_optimal_<dataset> files would be the compute-optimal choice table's
        raise ConfigError("config key datasets.choice: a data set may not be named 'choice' "
                          "(results/tables/compute_optimal_choice.csv is the compute-optimal choice table)")

    def need(kind: str, known: dict, slug: str, key: str):
        if slug not in known:
            raise ConfigError(f"config key {key}: unknown {kind} slug {slug!r}; defined: {', '.join(known)}")

    for slug, m in models.items():
        kind = model_kind(config, slug)  # raises unless exactly one of arch, hub_id, checkpoint
        check_format(config, slug, kind)
        if kind == "checkpoint":
            extra = [k for k in ("train", "sft_dataset", "arch") if k in m]
            if extra:
                raise ConfigError(f"config key models.{slug}.{extra[0]}: a checkpoint model is used as it is "
                                  "(no training); drop the key or fine-tune a base with hub_id")
            continue
        for key in ("train", "sft_dataset"):
            if key not in m:
                raise ConfigError(f"config key models.{slug}.{key}: required for a model trained from "
                                  f"{'arch' if kind == 'arch' else 'hub_id'}")
        check_train(m["train"], f"models.{slug}.train")
        need("dataset", datasets, m["sft_dataset"], f"models.{slug}.sft_dataset")
    check_prm(config, need)
    if needs_tokenizer(config):
        if "tokenizer" not in config:
            raise ConfigError("config key tokenizer: required when a model or the PRM is built from `arch`")
        need("dataset", datasets, config["tokenizer"]["dataset"], "tokenizer.dataset")
    ev = config["evaluate"]
    for i, d in enumerate(ev["datasets"]):
        need("dataset", datasets, d, f"evaluate.datasets[{i}]")
    for i, m in enumerate(ev["models"]):
        need("model", models, m, f"evaluate.models[{i}]")
    for i, s in enumerate(ev["strategies"]):
        if s not in STRATEGIES:
            raise ConfigError(f"config key evaluate.strategies[{i}]: unknown strategy {s!r}; "
                              f"known: {', '.join(STRATEGIES)}")
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
        if d["source"] == "hub" and "hub" not in d:
            raise ConfigError(f"config key datasets.{slug}.hub: required when source is hub")
        if "types" in d and d["format"] != "metamath":
            raise ConfigError(f"config key datasets.{slug}.types: only for format metamath")
        if (d["source"] == "toy_code") != (d.get("grader") in ("toy_code", "code")) and d.get("grader") != "mbpp":
            raise ConfigError(f"config key datasets.{slug}.grader: the toy code task (source toy_code) and the "
                              f"grader toy_code (or code) go together (found source {d['source']}, grader "
                              f"{d.get('grader')})")
        toy = d.get("toy", {})
        if toy.get("carry_free") == "every_order" and toy.get("carry_rate", 0.5) > 0:
            raise ConfigError(f"config key datasets.{slug}.toy.carry_free: every_order draws questions that carry in "
                              f"no order; it needs carry_rate 0 (found {toy.get('carry_rate', 0.5)})")
    check_figures(config, need)
    check_beam_widths(config)
    check_table1(config)
    check_local_paths(config)


def check_beam_widths(config: dict) -> None:
    """Beam search and DVTS split a budget N into beams of M = beam_width: M must divide every budget."""
    for strategy in BEAM_STRATEGIES:
        block = config["strategies"].get(strategy)
        if block is None:
            continue
        m = block.get("beam_width", DEFAULT_BEAM_WIDTH)
        bad = [n for n in block.get("budgets", []) if n % m]
        if bad:
            raise ConfigError(f"config key strategies.{strategy}.beam_width: {m} does not divide the budget(s) "
                              f"{', '.join(map(str, bad))} (strategies.{strategy}.budgets); every budget must be a "
                              "multiple of the beam width")


def check_table1(config: dict) -> None:
    """Table 1's budgets, when set, must be budgets the study runs."""
    ev, t1 = config["evaluate"], config["report"]["table1"]
    for strategy in ("rebase", "sampling", *BEAM_STRATEGIES):
        key = f"{strategy}_budget"
        n = t1.get(key)
        if n is None or strategy not in ev["strategies"]:
            continue
        for slug in ev["models"]:
            if n not in budgets(config, slug, strategy):
                raise ConfigError(f"config key report.table1.{key}: {n} is not a {strategy} budget of model "
                                  f"{slug} ({', '.join(map(str, budgets(config, slug, strategy)))})")


def check_local_paths(config: dict) -> None:
    """Local files and model directories named in the config must exist, so a typo stops the run at planning
    (naming the key and the path) instead of failing a job hours in. Hub ids (org/name) are not checked:
    planning never touches the network."""
    from infscale.core.models import resolve_model_source

    for slug, d in config["datasets"].items():
        for split, path in d.get("files", {}).items():
            if not Path(path).is_file():
                raise ConfigError(f"config key datasets.{slug}.files.{split}: no such file {path!r} "
                                  f"(relative paths start at the working directory {Path.cwd()})")
    sources = [(f"models.{slug}.{k}", m[k]) for slug, m in config["models"].items()
               for k in ("hub_id", "checkpoint") if k in m]
    verifiers = [("prm", config["prm"])] + [(f"prm_ablations.{n}", b) for n, b in config["prm_ablations"].items()]
    sources += [(f"{where}.{k}", block[k]) for where, block in verifiers
                for k in ("hub_id", "checkpoint") if k in block]
    for key, source in sources:
        try:
            resolve_model_source(source)
        except FileNotFoundError as e:
            raise ConfigError(f"config key {key}: {e}") from None


def check_train(train: dict, key: str) -> None:
    if ("steps" in train) == ("epochs" in train):
        raise ConfigError(f"config key {key}: give exactly one of steps, epochs")
    micro = train.get("micro_batch_size")
    if micro and train["batch_size"] % micro:
        raise ConfigError(f"config key {key}.micro_batch_size: {micro} does not divide batch_size "
                          f"{train['batch_size']}")


def check_format(config: dict, slug: str, kind: str) -> None:
    """A model's format block is one PolicyFormat; a policy this study fine-tunes learns the paper's format, so
    it keeps it (its SFT rows, PRM labels and rollouts are written in it)."""
    from infscale.core.policy_format import policy_format

    try:
        fmt = policy_format(config, slug)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if kind != "checkpoint" and not fmt.is_paper:
        raise ConfigError(f"config key models.{slug}.format: a policy trained here (from {kind}) is fine-tuned in "
                          "the paper's format and must keep it; a format is for a released checkpoint")


def check_prm(config: dict, need) -> None:
    """The study's verifier and every ablation verifier: each source names what it needs."""
    check_verifier(config, config["prm"], "prm", need)
    for name, block in config["prm_ablations"].items():
        if name == config["prm"]["name"]:
            raise ConfigError(f"config key prm_ablations.{name}: the name of the study's own verifier (prm.name)")
        if block.get("name", name) != name:
            raise ConfigError(f"config key prm_ablations.{name}.name: {block['name']!r}; an ablation is named by "
                              "its key (drop name)")
        check_verifier(config, block, f"prm_ablations.{name}", need)


def check_verifier(config: dict, prm: dict, where: str, need) -> None:
    """What one verifier block's source needs (see the schema's definitions.prm), keys named from `where`."""
    datasets = config["datasets"]
    source = prm["source"]
    required = {"rollouts": ("policy", "dataset", "train"), "dataset": ("dataset", "train"),
                "checkpoint": ("checkpoint",), "policy_likelihood": ("policy",)}[source]
    for key in required:
        if key not in prm:
            raise ConfigError(f"config key {where}.{key}: required when {where}.source is {source}")
    check_family(prm, where)
    if source == "checkpoint":
        return
    if source == "policy_likelihood":
        need("model", config["models"], prm["policy"], f"{where}.policy")
        return
    check_train(prm["train"], f"{where}.train")
    need("dataset", datasets, prm["dataset"], f"{where}.dataset")
    if "policy" in prm:
        need("model", config["models"], prm["policy"], f"{where}.policy")
    for i, name in enumerate(prm.get("sample_from", [])):
        need("model", config["models"], name, f"{where}.sample_from[{i}]")
    if source == "rollouts" and datasets[prm["dataset"]].get("grader") in ("toy_code", "mbpp", "code"):
        raise ConfigError(f"config key {where}.dataset: a PRM labelled by rollouts on a code task is not built yet "
                          f"(docs/code-study.md); verify code with a policy's likelihood or a released checkpoint")
    if source == "rollouts":
        from infscale.core.policy_format import policy_format

        for key, name in [("policy", prm["policy"])] + [(f"sample_from[{i}]", m)
                                                        for i, m in enumerate(prm.get("sample_from", []))]:
            if not policy_format(config, name).is_paper:
                raise ConfigError(f"config key {where}.{key}: rollout labels are written in the paper's step format, "
                                  f"but models.{name}.format is another")
    if prm.get("step_labels") == "exact" and datasets[prm["dataset"]].get("source") != "toy":
        raise ConfigError(f"config key {where}.step_labels: exact step labels exist for the toy task only")
    fmt = datasets[prm["dataset"]]["format"]
    if source == "dataset" and fmt != "math_shepherd":
        raise ConfigError(f"config key {where}.dataset: source dataset needs Math-Shepherd rows (datasets."
                          f"{prm['dataset']}.format: math_shepherd), found format {fmt}")
    if source == "rollouts" and fmt == "math_shepherd":
        raise ConfigError(f"config key {where}.dataset: rollouts need problems with answers, {prm['dataset']!r} "
                          f"holds Math-Shepherd rows (use {where}.source: dataset)")
    has_base = prm.get("hub_id") or prm.get("arch") or (prm["init_from_policy"] and "policy" in prm)
    if source == "dataset" and not has_base:
        raise ConfigError(f"config key {where}.hub_id: source dataset needs a base: hub_id, arch, or policy with "
                          "init_from_policy")
    if not prm.get("hub_id") and not prm["init_from_policy"] and "arch" not in prm:
        raise ConfigError(f"config key {where}.arch: required when {where}.init_from_policy is false")


def check_family(prm: dict, where: str) -> None:
    """A released family reads a released checkpoint; its options belong to it (docs/verifiers.md)."""
    family = prm.get("family", "math_shepherd")
    if family != "math_shepherd" and prm["source"] != "checkpoint":
        raise ConfigError(f"config key {where}.family: family {family} reads a released PRM (source checkpoint); "
                          f"{where}.source is {prm['source']} (a PRM this study trains or a policy's likelihood is "
                          "read as math_shepherd)")
    for key, owner in (("system_prompt", "qwen_prm"), ("step_separator", "token_classification")):
        if key in prm and family != owner:
            raise ConfigError(f"config key {where}.{key}: only for family {owner} ({where}.family is {family})")
    if prm.get("trust_remote_code") and family == "math_shepherd":
        raise ConfigError(f"config key {where}.trust_remote_code: family math_shepherd runs no released code")


def check_figures(config: dict, need) -> None:
    for name, f in config.get("figures", {}).items():
        key = f"figures.{name}"
        for i, d in enumerate(f["datasets"]):
            need("dataset", config["datasets"], d, f"{key}.datasets[{i}]")
        for i, m in enumerate(f["models"]):
            need("model", config["models"], m, f"{key}.models[{i}]")
        for i, s in enumerate(f["strategies"]):
            if s not in STRATEGIES:
                raise ConfigError(f"config key {key}.strategies[{i}]: unknown strategy {s!r}")
            if s != "greedy" and s not in config["strategies"]:
                raise ConfigError(f"config key strategies.{s}: required by figure {name}")
        if f["kind"] in ("compute_optimal", "fit") and len(f["datasets"]) != 1:
            raise ConfigError(f"config key {key}.datasets: a {f['kind']} figure has exactly one data set")
        if f["kind"] in ("compute_optimal", "fit") and "sampling" not in f["strategies"]:
            raise ConfigError(f"config key {key}.strategies: a {f['kind']} figure needs sampling")
