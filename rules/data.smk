# Data: the toy task is generated here; other data sets come from local JSONL files (hub loading: data.py).


rule prepare_data:
    input:
        data_inputs,
    output:
        f"{R}/data/{{dataset}}/{{split}}.jsonl",
    log:
        f"{R}/logs/prepare_data/{{dataset}}_{{split}}.log",
    conda:
        CONDA_ENV
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
    script:
        "../scripts/prepare_data.py"


if cfg.needs_tokenizer(config):  # only models built from `arch` use the task tokenizer

    rule train_tokenizer:
        input:
            f"{R}/data/{config['tokenizer']['dataset']}/train.jsonl",
        output:
            directory(f"{R}/models/tokenizer"),
        log:
            f"{R}/logs/train_tokenizer.log",
        localrule: True
        conda:
            CONDA_ENV
        params:
            vocab_size=config["tokenizer"]["vocab_size"],
        script:
            "../scripts/train_tokenizer.py"
