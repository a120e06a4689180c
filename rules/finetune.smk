# Policies (SFT, loss on the solution only) and the PRM (Math-Shepherd labels from a policy's rollouts).


rule train_policy:
    input:
        tokenizer=f"{R}/models/tokenizer",
        data=lambda wc: f"{R}/data/{config['models'][wc.model]['sft_dataset']}/train.jsonl",
    output:
        directory(f"{R}/models/policy/{{model}}"),
    params:
        arch=lambda wc: config["models"][wc.model]["arch"],
        train=lambda wc: config["models"][wc.model]["train"],
        seed=lambda wc: config["models"][wc.model]["seed"],
    threads: config["threads"]
    priority: 10  # the longest jobs of the default run: start them first
    log:
        f"{R}/logs/train_policy/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train_policy/{{model}}.tsv"
    script:
        "../scripts/train_policy.py"


rule label_prm_data:
    input:
        policy=policy_dir(config["prm"]["policy"]),
        data=f"{R}/data/{config['prm']['dataset']}/prm.jsonl",
    output:
        f"{R}/prm_data/{{prm}}.jsonl",
    params:
        grader=grader(config["prm"]["dataset"]),
        samples=config["prm"]["samples"],
        rollouts=config["prm"]["rollouts"],
        temperature=config["prm"]["temperature"],
        max_new_tokens=config["prm"]["max_new_tokens"],
        seed=config["prm"]["seed"],
        engine=cfg.engine_params(config, config["prm"]["policy"]),
    threads: config["threads"]
    log:
        f"{R}/logs/label_prm_data/{{prm}}.log",
    benchmark:
        f"{R}/benchmarks/label_prm_data/{{prm}}.tsv"
    script:
        "../scripts/label_prm_data.py"


rule train_prm:
    input:
        data=f"{R}/prm_data/{{prm}}.jsonl",
        tokenizer=f"{R}/models/tokenizer",
        init=policy_dir(config["prm"]["policy"]) if config["prm"]["init_from_policy"] else [],
    output:
        directory(f"{R}/models/prm/{{prm}}"),
    params:
        arch=config["prm"].get("arch"),
        train=config["prm"]["train"],
        label=config["prm"]["label"],
        seed=config["prm"]["seed"],
    threads: config["threads"]
    log:
        f"{R}/logs/train_prm/{{prm}}.log",
    benchmark:
        f"{R}/benchmarks/train_prm/{{prm}}.tsv"
    script:
        "../scripts/train_prm.py"
