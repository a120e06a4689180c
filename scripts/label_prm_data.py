from infscale.engines import engine_from_config
from infscale.io import read_jsonl, write_jsonl
from infscale.prm_data import label_with_rollouts
from infscale.runtime import job


def main(snakemake):
    p = snakemake.params
    with job(snakemake.log[0], snakemake.threads):
        engine = engine_from_config(p.engine, snakemake.input.policy)
        rows = read_jsonl(snakemake.input.data, required=("question", "answer"))
        try:
            labelled = label_with_rollouts(engine, rows, p.grader, p.samples, p.rollouts, p.max_new_tokens,
                                           p.temperature, p.seed)
        finally:
            engine.close()
        write_jsonl(snakemake.output[0], labelled)
        print(f"{len(labelled)} labelled solutions from {len(rows)} problems")


if __name__ == "__main__":  # vLLM's engine spawns processes that import this file again
    main(snakemake)  # noqa: F821 (defined by Snakemake)
