from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.runtime import job
from infscale.search.engine_base import derived_seed
from infscale.search.engines import engine_from_config
from infscale.training.prm_data import label_solutions, sample_solutions


def main(snakemake):
    p, inp = snakemake.params, snakemake.input
    with job(snakemake.log[0], snakemake.threads):
        rows = read_jsonl(inp.data, required=("question", "answer"))
        items = []
        # Solutions to label: `samples` per problem from each sampling policy (the completer's when none named).
        for name, path, engine_cfg in zip(p.sample_from, inp.samplers, p.sampler_engines):
            engine = engine_from_config(engine_cfg, path)
            try:
                items += sample_solutions(engine, rows, p.samples, p.max_new_tokens, p.temperature,
                                          derived_seed(p.seed, "samples", name), source=name)
            finally:
                engine.close()
        engine = engine_from_config(p.engine, inp.policy) if p.step_labels == "rollouts" else None
        try:
            labelled = label_solutions(engine, items, p.grader, p.rollouts, p.max_new_tokens, p.temperature,
                                       derived_seed(p.seed, "rollouts"), p.search, p.step_labels)
        finally:
            if engine is not None:
                engine.close()
        write_jsonl(snakemake.output[0], labelled)
        print(f"{len(labelled)} labelled solutions from {len(rows)} problems x {len(p.sample_from)} policies "
              f"({p.search} search, {p.step_labels} labels)")


if __name__ == "__main__":  # vLLM's engine spawns processes that import this file again
    main(snakemake)  # noqa: F821 (defined by Snakemake)
