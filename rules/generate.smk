# Candidate solutions per (dataset, model, strategy, n, seed), then PRM step scores for each candidate.


rule generate:
    input:
        policy=lambda wc: policy_dir(wc.model),
        data=f"{R}/data/{{dataset}}/test.jsonl",
        prm=lambda wc: prm_dir() if wc.strategy in TREE_STRATEGIES else [],  # tree search is PRM-guided
    output:
        f"{R}/generations/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
    log:
        f"{R}/logs/generate/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/generate/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: job_threads("generate")
    resources:
        **job_resources("generate"),
    params:
        strategy=lambda wc: cfg.strategy_params(config, wc.model, wc.strategy),
        grader=lambda wc: grader(wc.dataset),
        limit=lambda wc: config["datasets"][wc.dataset].get("limit"),
        engine=lambda wc: cfg.engine_params(config, wc.model),  # study-wide block with the model's overrides
        format=lambda wc: cfg.format_params(config, wc.model),  # the policy's prompt, step delimiter, answer
        prm_batch_tokens=config["prm_batch_tokens"],
        verifier=lambda wc: (
            cfg.verifier_params(PRM_CFG, grader(wc.dataset)) if wc.strategy in TREE_STRATEGIES else None
        ),
        shard_size=config["shard_size"],
        generation_shards=lambda wc, output: shard_dir_of(output[0]),  # finished shards; score removes them
    script:
        "../scripts/generate.py"


rule score:
    """PRM step scores of every candidate of a sampled run (greedy, sampling)."""
    input:
        generations=f"{R}/generations/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
        prm=prm_dir(),
        policy=lambda wc: policy_dir(wc.model),
    output:
        f"{R}/scored/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
    log:
        f"{R}/logs/score/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.tsv"
    wildcard_constraints:
        strategy=one_of(SAMPLED_STRATEGIES),
    conda:
        CONDA_ENV
    threads: job_threads("score")
    resources:
        **job_resources("score"),
    params:
        batch_size=config["engine"]["batch_size"],
        max_batch_tokens=config["prm_batch_tokens"],
        verifier=lambda wc: cfg.verifier_params(PRM_CFG, grader(wc.dataset)),
        format=lambda wc: cfg.format_params(config, wc.model),  # the verifier reads the policy's steps
        generation_shards=lambda wc, input: shard_dir_of(input.generations),
        shard_size=config["shard_size"],
        score_shards=lambda wc, output: shard_dir_of(output[0]),  # finished shards; metrics removes them
    script:
        "../scripts/score.py"


if ABLATIONS:

    rule score_ablation:
        """An ablation verifier's step scores of the sampled candidates the verifier quality report reads."""
        input:
            generations=f"{R}/generations/{{dataset}}/{{model}}/sampling/n{{n}}/seed{{seed}}.jsonl",
            prm=lambda wc: verifier_dir(wc.prm),
            policy=lambda wc: policy_dir(wc.model),
        output:
            f"{R}/scored_ablations/{{prm}}/{{dataset}}/{{model}}/sampling/n{{n}}/seed{{seed}}.jsonl",
        log:
            f"{R}/logs/score_ablation/{{prm}}_{{dataset}}_{{model}}_n{{n}}_seed{{seed}}.log",
        benchmark:
            f"{R}/benchmarks/score_ablation/{{prm}}_{{dataset}}_{{model}}_n{{n}}_seed{{seed}}.tsv"
        wildcard_constraints:
            prm=one_of(ABLATIONS),
        conda:
            CONDA_ENV
        threads: job_threads("score")
        resources:
            **job_resources("score"),
        params:
            batch_size=config["engine"]["batch_size"],
            max_batch_tokens=config["prm_batch_tokens"],
            verifier=lambda wc: cfg.verifier_params(VERIFIERS[wc.prm], grader(wc.dataset)),
            format=lambda wc: cfg.format_params(config, wc.model),
            generation_shards="",  # the score job removes them
            shard_size=config["shard_size"],
            score_shards=lambda wc, output: shard_dir_of(output[0]),  # finished shards; prm_quality removes them
        script:
            "../scripts/score.py"


rule tree_scores:
    """A tree search's candidates carry the step scores the PRM gave while searching (the tree's rewards): this
    checks and passes them on to the scored layout, without loading the PRM, where Snakemake runs (no GPU job)."""
    input:
        generations=f"{R}/generations/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
    output:
        f"{R}/scored/{{dataset}}/{{model}}/{{strategy}}/n{{n}}/seed{{seed}}.jsonl",
    log:
        f"{R}/logs/tree_scores/{{dataset}}_{{model}}_{{strategy}}_n{{n}}_seed{{seed}}.log",
    wildcard_constraints:
        strategy=one_of(TREE_STRATEGIES),
    localrule: True
    conda:
        CONDA_ENV
    params:
        generation_shards=lambda wc, input: shard_dir_of(input.generations),
    script:
        "../scripts/tree_scores.py"
