# Data: the toy task is generated here; other data sets come from local JSONL files (hub loading: data.py).


def data_inputs(wildcards):
    d = config["datasets"][wildcards.dataset]
    return [d["files"][wildcards.split]] if d["source"] == "jsonl" else []


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


rule train_tokenizer:
    input:
        f"{R}/data/{config['tokenizer']['dataset']}/train.jsonl",
    output:
        directory(f"{R}/models/tokenizer"),
    params:
        vocab_size=config["tokenizer"]["vocab_size"],
    log:
        f"{R}/logs/train_tokenizer.log",
    script:
        "../scripts/train_tokenizer.py"
