# Policies (SFT, loss on the solution only) and the PRMs (Math-Shepherd labels from a policy's rollouts, released
# Math-Shepherd rows, or a released PRM); a policy-likelihood verifier needs no rule (it is its policy). A model is trained from `arch` or a hub base, or fetched as released.
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
    priority: train_priority  # the longest jobs, the verifiers' policies first (common.smk)
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


if ROLLOUT_PRMS:

    rule label_prm_data:
        """Solutions sampled from every sampling policy, labelled with the completer's (prm.policy) rollouts."""
        input:
            policy=lambda wc: policy_dir(VERIFIERS[wc.prm]["policy"]),
            samplers=lambda wc: [policy_dir(m) for m in prm_samplers(wc.prm)],
            data=lambda wc: f"{R}/data/{VERIFIERS[wc.prm]['dataset']}/prm.jsonl",
        output:
            f"{R}/prm_data/{{prm}}.jsonl",
        log:
            f"{R}/logs/label_prm_data/{{prm}}.log",
        benchmark:
            f"{R}/benchmarks/label_prm_data/{{prm}}.tsv"
        wildcard_constraints:
            prm=one_of(ROLLOUT_PRMS),
        priority: CRITICAL_PRIORITY
        conda:
            CONDA_ENV
        threads: job_threads("label_prm_data")
        resources:
            **job_resources("label_prm_data"),
        params:
            grader=lambda wc: grader(VERIFIERS[wc.prm]["dataset"]),
            sample_from=lambda wc: prm_samplers(wc.prm),
            sampler_engines=lambda wc: [cfg.engine_params(config, m) for m in prm_samplers(wc.prm)],
            samples=lambda wc: VERIFIERS[wc.prm]["samples"],
            rollouts=lambda wc: VERIFIERS[wc.prm]["rollouts"],
            search=lambda wc: VERIFIERS[wc.prm]["search"],
            step_labels=lambda wc: VERIFIERS[wc.prm]["step_labels"],
            temperature=lambda wc: VERIFIERS[wc.prm]["temperature"],
            max_new_tokens=lambda wc: VERIFIERS[wc.prm]["max_new_tokens"],
            seed=lambda wc: VERIFIERS[wc.prm]["seed"],
            engine=lambda wc: cfg.engine_params(config, VERIFIERS[wc.prm]["policy"]),
        script:
            "../scripts/label_prm_data.py"


if FETCHED_PRMS:

    rule fetch_prm:
        """A released PRM used as it is (e.g. tkitsers/Llemma-reward-model)."""
        output:
            directory(f"{R}/models/prm/{{prm}}"),
        log:
            f"{R}/logs/fetch_prm/{{prm}}.log",
        wildcard_constraints:
            prm=one_of(FETCHED_PRMS),
        localrule: True  # a download: where Snakemake runs, which reaches the hub
        conda:
            CONDA_ENV
        params:
            source=lambda wc: VERIFIERS[wc.prm]["checkpoint"],
        script:
            "../scripts/fetch_model.py"


if TRAINED_PRMS:

    rule train_prm:
        input:
            data=lambda wc: prm_training_data(wc.prm),
            tokenizer=lambda wc: (TOKENIZER if not prm_init(wc.prm) and uses_tokenizer(VERIFIERS[wc.prm]) else []),
            init=lambda wc: prm_init(wc.prm),
            base=lambda wc: base_dir(VERIFIERS[wc.prm]),
        output:
            directory(f"{R}/models/prm/{{prm}}"),
        log:
            f"{R}/logs/train_prm/{{prm}}.log",
        benchmark:
            f"{R}/benchmarks/train_prm/{{prm}}.tsv"
        wildcard_constraints:
            prm=one_of(TRAINED_PRMS),
        priority: CRITICAL_PRIORITY
        conda:
            CONDA_ENV
        threads: job_threads("train_prm")
        resources:
            **job_resources("train_prm"),
        params:
            arch=lambda wc: VERIFIERS[wc.prm].get("arch"),
            base=lambda wc: VERIFIERS[wc.prm].get("hub_id"),
            train=lambda wc: VERIFIERS[wc.prm]["train"],
            label=lambda wc: VERIFIERS[wc.prm]["label"],
            seed=lambda wc: VERIFIERS[wc.prm]["seed"],
        script:
            "../scripts/train_prm.py"
