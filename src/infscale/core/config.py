"""Config queries for planning and jobs: which models are trained or fetched, the budgets, seeds and generation
runs of a strategy, the engine block and scheduler resources of a job, and the names every part shares (the
strategies). Validation against the schema is core/validation.py."""
from __future__ import annotations

STRATEGIES = ("greedy", "sampling", "rebase", "mcts", "beam_search", "dvts")  # also the order of tables and panels
PREFIX_STRATEGIES = ("greedy", "sampling")  # a smaller budget is a prefix of the candidates of a larger one
TREE_STRATEGIES = ("rebase", "mcts", "beam_search", "dvts")  # need the PRM while generating; one run per budget
BEAM_STRATEGIES = ("beam_search", "dvts")  # budget N = paths, split into beams of `beam_width` M (M divides N)
DEFAULT_BEAM_WIDTH = 4  # search-and-learn's m


class ConfigError(ValueError):
    pass


def canonical(obj):
    """The same config with every mapping's keys sorted. Snakemake compares a job's params by their text, so
    a config written with its keys in another order (yaml.safe_dump sorts them) must not look changed."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


MODEL_KINDS = ("arch", "hub_id", "checkpoint")


def model_kind(config: dict, slug: str) -> str:
    """How a policy comes to be: "arch" (trained from scratch), "hub_id" (a base fine-tuned) or "checkpoint"."""
    m = config["models"][slug]
    given = [k for k in MODEL_KINDS if k in m]
    if len(given) != 1:
        raise ConfigError(f"config key models.{slug}: give exactly one of {', '.join(MODEL_KINDS)} "
                          f"(found {', '.join(given) or 'none'})")
    return given[0]


def base_slug(hub_id: str) -> str:
    """The directory name of a hub base's local copy (results/models/base/<slug>): org--name."""
    return hub_id.replace("/", "--")


def trained_models(config: dict) -> list[str]:
    """Policies this study trains (from arch or a hub base)."""
    return [s for s in config["models"] if model_kind(config, s) != "checkpoint"]


def checkpoint_models(config: dict) -> list[str]:
    """Policies used as released (fetched, not trained)."""
    return [s for s in config["models"] if model_kind(config, s) == "checkpoint"]


def verifiers(config: dict) -> dict[str, dict]:
    """Every verifier of the study by name: the study's own (`prm`) first, then the ablations (`prm_ablations`)."""
    return {config["prm"]["name"]: config["prm"], **config.get("prm_ablations", {})}


def verifier_params(block: dict, grader: str | None = None) -> dict:
    """What a job needs to load a verifier besides its directory: a PRM reads its own checkpoint by its family
    (search/prm_families.py; the default, math_shepherd, adds nothing); a policy-likelihood verifier
    (search/policy_likelihood.py) its calibration and token score. On a code data set (`grader` of kind code) it
    reads steps at the ends of logical lines (`steps: code`, core/codesteps.py)."""
    from infscale.core.grading import grader_kind

    steps = {"steps": "code"} if grader is not None and grader_kind(grader) == "code" else {}
    if block["source"] != "policy_likelihood":
        family = block.get("family", "math_shepherd")
        if family == "math_shepherd":
            return {"kind": "prm", **steps}  # as before families existed: a study's jobs keep their parameters
        return {"kind": "prm", "family": family, "trust_remote_code": bool(block.get("trust_remote_code", False)),
                **{k: block[k] for k in ("system_prompt", "step_separator") if k in block}, **steps}
    calibration = block.get("calibration", {})
    return {"kind": "policy_likelihood", "a": float(calibration.get("a", 4.0)), "b": float(calibration.get("b", 1.0)),
            "token_score": block.get("token_score", "logprob"), "step_reduction": block.get("step_reduction", "min"),
            **steps}


def needs_tokenizer(config: dict) -> bool:
    """The task tokenizer is trained only for models (or a PRM) built from scratch."""
    def from_arch(prm):
        return prm["source"] in ("rollouts", "dataset") and "arch" in prm and not prm.get("hub_id") and not (
            prm.get("init_from_policy", True) and prm.get("policy"))

    return any(from_arch(p) for p in verifiers(config).values()) or \
        any(model_kind(config, s) == "arch" for s in config["models"])


def format_params(config: dict, model: str) -> dict:
    """A policy's format (core/policy_format.py) as a job's params: every key, the paper's where none is given."""
    from infscale.core.policy_format import policy_format

    return canonical(policy_format(config, model).as_dict())


def sampling_params_for(config: dict, model: str) -> dict:
    """strategies.sampling with the model's own overrides on top."""
    return {**config.get("strategies", {}).get("sampling", {}), **config["models"][model].get("sampling", {})}


def engine_params(config: dict, model: str) -> dict:
    """The engine block of one model: the study-wide `engine` with the model's own `engine` keys on top."""
    return canonical({**config["engine"], **config["models"][model].get("engine", {})})


def strategy_params(config: dict, model: str, strategy: str) -> dict:
    """A strategy's block with the model's own overrides on top (sampling: any key; REBASE: its budgets)."""
    if strategy == "sampling":
        return sampling_params_for(config, model)
    return {**config["strategies"][strategy], **config["models"][model].get(strategy, {})}


def budgets(config: dict, model: str, strategy: str) -> list[int]:
    """The budgets n measured: samples (sampling), width (REBASE, beam search, DVTS) or expansions (MCTS); greedy
    is n = 1."""
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


RESOURCE_FALLBACKS = {"gpu": 0, "mem_mb": 4096, "runtime": 60}
TREE_RULE = "generate_tree"  # resources of a tree-search generate job (policy and PRM), layered over `generate`


def resource_parts(rule: str, strategy: str | None = None) -> tuple[str, ...]:
    """The blocks of a resources layer one job reads, later ones winning: a tree search's generate job holds the
    PRM too, so it reads `generate_tree` over `generate`."""
    if rule == "generate" and strategy in TREE_STRATEGIES:
        return ("default", rule, TREE_RULE)
    return ("default", rule)


def resource_layers(config: dict, model: str | None = None) -> list[tuple[str, dict]]:
    """(config key, resources block) from the study's to the model's."""
    layers = [("resources", config.get("resources", {}))]
    if model is not None:
        layers.append((f"models.{model}.resources", config["models"][model].get("resources", {})))
    return layers


def job_resources(config: dict, rule: str, model: str | None = None, strategy: str | None = None) -> dict:
    """What one job of `rule` asks of the scheduler: built-in fallbacks < resources.default < resources.<rule>
    (< resources.generate_tree for a tree search) < models.<model>.resources (default, then <rule>, ...). Always
    has gpu and threads; mem_mb and runtime only where the config sets them for this rule somewhere (for some
    model), so a laptop run asks for nothing it can't know."""
    parts = resource_parts(rule, strategy)
    merged = {}
    for _, layer in resource_layers(config, model):
        for part in parts:
            merged.update(layer.get(part, {}))
    every = [config.get("resources", {})] + [m.get("resources", {}) for m in config["models"].values()]
    configured = {k for layer in every for part in ("default", rule, TREE_RULE if rule == "generate" else rule)
                  for k in layer.get(part, {})}
    out = {k: merged.get(k, v) for k, v in RESOURCE_FALLBACKS.items() if k == "gpu" or k in configured}
    out["threads"] = merged.get("threads", config["threads"])
    return out


def resource_key(config: dict, rule: str, model: str | None, strategy: str | None, key: str) -> str:
    """The config key that sets `key` for such a job (the last layer that has it), for error messages."""
    found = f"resources.{rule}.{key}"
    for prefix, layer in resource_layers(config, model):
        for part in resource_parts(rule, strategy):
            if key in layer.get(part, {}):
                found = f"{prefix}.{part}.{key}"
    return found
