# Policies (SFT, loss on the solution only) and the PRM (Math-Shepherd labels from a policy's rollouts, released
# Math-Shepherd rows, or a released PRM). A model is trained from `arch` or a hub base, or fetched as released.
if BASES:

    rule fetch_base:
        """A hub base's weights and tokenizer, downloaded where Snakemake runs (login nodes reach the hub, compute
        nodes often do not) before any training job needs them; gated models (Llama-3, Mistral) need an HF token."""
        output:
            directory(f"{R}/models/base/{{base}}"),
        log:
            f"{R}/logs/fetch_base/{{base}}.log",
        wildcard_constraints:
            base=one_of(BASES),
        localrule: True
        conda:
            CONDA_ENV
        params:
            source=lambda wc: BASES[wc.base],
        script:
            "../scripts/fetch_model.py"


rule train_policy:
    input:
        tokenizer=lambda wc: TOKENIZER if uses_tokenizer(config["models"][wc.model]) else [],
        data=lambda wc: f"{R}/data/{config['models'][wc.model]['sft_dataset']}/train.jsonl",
        base=lambda wc: base_dir(config["models"][wc.model]),
    output:
        directory(f"{R}/models/policy/{{model}}"),
    log:
        f"{R}/logs/train_policy/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train_policy/{{model}}.tsv"
    wildcard_constraints:
        model=one_of(TRAINED),
    priority: 10  # the longest jobs of the default run: start them first
    conda:
        CONDA_ENV
    threads: job_threads("train_policy")
    resources:
        **job_resources("train_policy"),
    params:
        arch=lambda wc: config["models"][wc.model].get("arch"),
        base=lambda wc: config["models"][wc.model].get("hub_id"),  # a hub base, fine-tuned (paper Table 2)
        train=lambda wc: config["models"][wc.model]["train"],
        seed=lambda wc: config["models"][wc.model]["seed"],
    script:
        "../scripts/train_policy.py"


if FETCHED:

    rule fetch_model:
        """A released policy used as it is (e.g. tkitsers/Llemma-metamath-7b): downloaded by the job, not the plan."""
        output:
            directory(f"{R}/models/policy/{{model}}"),
        log:
            f"{R}/logs/fetch_model/{{model}}.log",
        wildcard_constraints:
            model=one_of(FETCHED),
        localrule: True  # a download: where Snakemake runs, which reaches the hub
        conda:
            CONDA_ENV
        params:
            source=lambda wc: config["models"][wc.model]["checkpoint"],
        script:
            "../scripts/fetch_model.py"


if PRM_CFG["source"] == "rollouts":

    PRM_SAMPLERS = PRM_CFG["sample_from"] or [PRM_CFG["policy"]]  # whose sampled solutions are labelled

    rule label_prm_data:
        """Solutions sampled from every sampling policy, labelled with the completer's (prm.policy) rollouts."""
        input:
            policy=policy_dir(PRM_CFG["policy"]),
            samplers=[policy_dir(m) for m in PRM_SAMPLERS],
            data=f"{R}/data/{PRM_CFG['dataset']}/prm.jsonl",
        output:
            f"{R}/prm_data/{{prm}}.jsonl",
        log:
            f"{R}/logs/label_prm_data/{{prm}}.log",
        benchmark:
            f"{R}/benchmarks/label_prm_data/{{prm}}.tsv"
        conda:
            CONDA_ENV
        threads: job_threads("label_prm_data")
        resources:
            **job_resources("label_prm_data"),
        params:
            grader=grader(PRM_CFG["dataset"]),
            sample_from=PRM_SAMPLERS,
            sampler_engines=[cfg.engine_params(config, m) for m in PRM_SAMPLERS],
            samples=PRM_CFG["samples"],
            rollouts=PRM_CFG["rollouts"],
            search=PRM_CFG["search"],
            step_labels=PRM_CFG["step_labels"],
            temperature=PRM_CFG["temperature"],
            max_new_tokens=PRM_CFG["max_new_tokens"],
            seed=PRM_CFG["seed"],
            engine=cfg.engine_params(config, PRM_CFG["policy"]),
        script:
            "../scripts/label_prm_data.py"


if PRM_CFG["source"] == "checkpoint":

    rule fetch_prm:
        """A released PRM used as it is (e.g. tkitsers/Llemma-reward-model)."""
        output:
            directory(f"{R}/models/prm/{{prm}}"),
        log:
            f"{R}/logs/fetch_prm/{{prm}}.log",
        localrule: True  # a download: where Snakemake runs, which reaches the hub
        conda:
            CONDA_ENV
        params:
            source=PRM_CFG["checkpoint"],
        script:
            "../scripts/fetch_model.py"

else:

    rule train_prm:
        input:
            data=(
                f"{R}/prm_data/{{prm}}.jsonl"
                if PRM_CFG["source"] == "rollouts"
                else f"{R}/data/{PRM_CFG['dataset']}/train.jsonl"
            ),
            tokenizer=TOKENIZER if not prm_init() and uses_tokenizer(PRM_CFG) else [],
            init=prm_init(),
            base=base_dir(PRM_CFG),
        output:
            directory(f"{R}/models/prm/{{prm}}"),
        log:
            f"{R}/logs/train_prm/{{prm}}.log",
        benchmark:
            f"{R}/benchmarks/train_prm/{{prm}}.tsv"
        conda:
            CONDA_ENV
        threads: job_threads("train_prm")
        resources:
            **job_resources("train_prm"),
        params:
            arch=PRM_CFG.get("arch"),
            base=PRM_CFG.get("hub_id"),
            train=PRM_CFG["train"],
            label=PRM_CFG["label"],
            seed=PRM_CFG["seed"],
        script:
            "../scripts/train_prm.py"
