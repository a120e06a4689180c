from infscale.engines import engine_from_config
from infscale.io import read_jsonl, write_jsonl
from infscale.prm import ProcessRewardModel, check_pairing
from infscale.runtime import job
from infscale.shards import fingerprint
from infscale.strategies import run_strategy_in_shards


def main(snakemake):
    p, wc, inp = snakemake.params, snakemake.wildcards, snakemake.input
    engines = []

    def load():  # only if a shard is left to compute
        prm = None
        if inp.prm:  # tree search scores partial solutions while it searches. The PRM loads first; on a shared GPU
            # the engine's gpu_memory_utilization leaves it room (docs/design.md, "As built: vLLM engine").
            check_pairing(inp.policy, inp.prm)
            prm = ProcessRewardModel(inp.prm, batch_size=p.engine["batch_size"])
        engines.append(engine_from_config(p.engine, inp.policy))
        return engines[0], prm

    with job(snakemake.log[0], snakemake.threads) as log:
        rows = read_jsonl(inp.data, required=("id", "question", "answer"))[: p.limit]
        stamp = fingerprint(
            dict(strategy=wc.strategy, params=p.strategy, n=wc.n, seed=wc.seed, grader=p.grader, engine=p.engine,
                 shard_size=p.shard_size, limit=p.limit),
            [inp.data, inp.policy, *([inp.prm] if inp.prm else [])],
        )
        records, report = run_strategy_in_shards(load, rows, p.grader, wc.strategy, p.strategy, int(wc.n),
                                                 int(wc.seed), p.shard_size, p.checkpoint, stamp)
        log.info(report)
        if engines and hasattr(engines[0], "prefix_cache"):
            print(f"prefix cache: {engines[0].prefix_cache}")
        write_jsonl(snakemake.output[0], records)  # the shards stay until the score job reads this output


if __name__ == "__main__":  # vLLM's engine spawns processes that import this file again
    main(snakemake)  # noqa: F821 (defined by Snakemake)
