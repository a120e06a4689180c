# Data: the toy task is generated here; other data sets come from local JSONL files (hub loading: data.py).


def data_inputs(wildcards):
    """Local files only: a hub data set is read by the job itself (never at planning), unless a local file
    overrides that split."""
    d = config["datasets"][wildcards.dataset]
    return [d["files"][wildcards.split]] if wildcards.split in d.get("files", {}) else []


rule prepare_data:
    input:
        data_inputs,
    output:
        f"{R}/data/{{dataset}}/{{split}}.jsonl",
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
    log:
        f"{R}/logs/prepare_data/{{dataset}}_{{split}}.log",
    script:
        "../scripts/prepare_data.py"


if cfg.needs_tokenizer(config):  # only models built from `arch` use the task tokenizer

    rule train_tokenizer:
        input:
            f"{R}/data/{config['tokenizer']['dataset']}/train.jsonl",
        output:
            directory(f"{R}/models/tokenizer"),
        params:
            vocab_size=config["tokenizer"]["vocab_size"],
        localrule: True
        log:
            f"{R}/logs/train_tokenizer.log",
        script:
            "../scripts/train_tokenizer.py"
