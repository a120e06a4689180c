# Candidate solutions per (dataset, model, strategy, n, seed), then PRM step scores for each candidate.


rule generate:
    input:
        policy=lambda wc: policy_dir(wc.model),
        data=f"{R}/data/{{dataset}}/test.jsonl",
        prm=lambda wc: prm_dir() if wc.strategy in TREE_STRATEGIES else [],  # tree search is PRM-guided
    output:
        f"{R}/generations/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
    params:
        strategy=lambda wc: cfg.strategy_params(config, wc.model, wc.strategy),
        grader=lambda wc: grader(wc.dataset),
        limit=lambda wc: config["datasets"][wc.dataset].get("limit"),
        engine=lambda wc: cfg.engine_params(config, wc.model),  # study-wide block with the model's overrides
        shard_size=config["shard_size"],
        checkpoint=lambda wc, output: checkpoint_dir_of(output[0]),  # finished shards; score removes them
    threads: job_threads("generate")
    resources:
        **job_resources("generate"),
    log:
        f"{R}/logs/generate/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/generate/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.tsv"
    script:
        "../scripts/generate.py"


rule score:
    input:
        generations=f"{R}/generations/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
        prm=prm_dir(),
        policy=lambda wc: policy_dir(wc.model),
    output:
        f"{R}/scored/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
    params:
        batch_size=config["engine"]["batch_size"],
        generation_shards=lambda wc, input: checkpoint_dir_of(input.generations),
    threads: job_threads("score")
    resources:
        **job_resources("score"),
    log:
        f"{R}/logs/score/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.tsv"
    script:
        "../scripts/score.py"
