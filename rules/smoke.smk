# The smoke run (infscale.smoke; docs/paper.md "First run"): each training job, on the resources it asks for, runs
# two optimizer steps on its longest rows and reports its peak GPU and host memory and seconds a step beside the
# estimate's figures, in minutes rather than the study's days. PRMs trained on rows that need no trained policy
# (a data set's, from a hub base or an arch) have one too; a rollout-labelled PRM needs the study's policies first.
rule smoke:
    input:
        f"{R}/smoke/smoke.md",


rule smoke_table:
    input:
        SMOKE_ROWS,
    output:
        f"{R}/smoke/smoke.md",
    log:
        f"{R}/logs/smoke_table.log",
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/smoke_table.py"


rule smoke_train_policy:
    input:
        tokenizer=lambda wc: TOKENIZER if uses_tokenizer(config["models"][wc.model]) else [],
        data=lambda wc: f"{R}/data/{config['models'][wc.model]['sft_dataset']}/train.jsonl",
        base=lambda wc: base_dir(config["models"][wc.model]),
    output:
        f"{R}/smoke/train_policy/{{model}}.json",
    log:
        f"{R}/logs/smoke_train_policy/{{model}}.log",
    wildcard_constraints:
        model=one_of(TRAINED),
    conda:
        CONDA_ENV
    threads: job_threads("train_policy")
    resources:
        **smoke_resources("train_policy"),
    params:
        spec=lambda wc: {
            "kind": "policy",
            "arch": config["models"][wc.model].get("arch"),
            "base": config["models"][wc.model].get("hub_id"),
            "train": config["models"][wc.model]["train"],
            "seed": config["models"][wc.model]["seed"],
        },
        estimate=lambda wc: smoke.estimate_figures(config, "train_policy", wc.model),
    script:
        "../scripts/smoke_train.py"


rule smoke_train_prm:
    input:
        tokenizer=lambda wc: TOKENIZER if uses_tokenizer(VERIFIERS[wc.prm]) else [],
        data=lambda wc: prm_training_data(wc.prm),
        base=lambda wc: base_dir(VERIFIERS[wc.prm]),
    output:
        f"{R}/smoke/train_prm/{{prm}}.json",
    log:
        f"{R}/logs/smoke_train_prm/{{prm}}.log",
    wildcard_constraints:
        prm=one_of(SMOKE_PRMS),
    conda:
        CONDA_ENV
    threads: job_threads("train_prm")
    resources:
        **smoke_resources("train_prm"),
    params:
        spec=lambda wc: {
            "kind": "prm",
            "arch": VERIFIERS[wc.prm].get("arch"),
            "base": VERIFIERS[wc.prm].get("hub_id"),
            "train": VERIFIERS[wc.prm]["train"],
            "seed": VERIFIERS[wc.prm]["seed"],
            "label": VERIFIERS[wc.prm]["label"],
        },
        estimate=lambda wc: smoke.estimate_figures(config, "train_prm", wc.prm),
    script:
        "../scripts/smoke_train.py"
