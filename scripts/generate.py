from infscale.engines import engine_from_config
from infscale.io import read_jsonl, write_jsonl
from infscale.prm import ProcessRewardModel, check_pairing
from infscale.runtime import job
from infscale.strategies import run_strategy


def main(snakemake):
    p, wc, inp = snakemake.params, snakemake.wildcards, snakemake.input
    with job(snakemake.log[0], snakemake.threads):
        rows = read_jsonl(inp.data, required=("id", "question", "answer"))[: p.limit]
        prm = None
        if inp.prm:  # tree search scores partial solutions while it searches. The PRM loads first; on a shared GPU
            # the engine's gpu_memory_utilization leaves it room (docs/design.md, "As built: vLLM engine").
            check_pairing(inp.policy, inp.prm)
            prm = ProcessRewardModel(inp.prm, batch_size=p.engine["batch_size"])
        engine = engine_from_config(p.engine, inp.policy)
        try:
            records = run_strategy(engine, prm, rows, p.grader, wc.strategy, p.strategy, int(wc.n), int(wc.seed))
            if hasattr(engine, "prefix_cache"):
                print(f"prefix cache: {engine.prefix_cache}")
        finally:
            engine.close()
        write_jsonl(snakemake.output[0], records)


if __name__ == "__main__":  # vLLM's engine spawns processes that import this file again
    main(snakemake)  # noqa: F821 (defined by Snakemake)
