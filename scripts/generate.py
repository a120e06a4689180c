from infscale.core.grading import grader_kind
from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.policy_format import PolicyFormat
from infscale.core.runtime import job, script_gpus
from infscale.search.placement import load_policy_and_prm
from infscale.search.prm_scoring import check_pairing
from infscale.search.shards import fingerprint
from infscale.search.strategies import run_strategy_in_shards


def main(snakemake):
    p, wc, inp = snakemake.params, snakemake.wildcards, snakemake.input
    engines = []
    fmt = PolicyFormat(**p.format)

    def load():  # only if a shard is left to compute
        # Tree search scores partial solutions while it searches: the PRM loads first, on its own GPU when the job
        # has two or more, and the policy engine on the others with the memory really free (infscale.search.placement).
        if inp.prm:
            check_pairing(inp.policy, inp.prm)
        engine, prm = load_policy_and_prm(p.engine, inp.policy, inp.prm or None, script_gpus(),
                                          dict(batch_size=p.engine["batch_size"], max_batch_tokens=p.prm_batch_tokens),
                                          verifier=p.verifier, fmt=fmt)
        engines.append(engine)
        return engine, prm

    with job(snakemake.log[0], snakemake.threads) as log:
        code = grader_kind(p.grader) == "code"  # a code task: its asserts grade each candidate in the sandbox
        rows = read_jsonl(inp.data, required=("id", "question", "tests" if code else "answer"))[: p.limit]
        if code:
            from infscale.evaluation.code_grading import code_rows

            rows = code_rows(rows, f"{inp.data}: ")
        stamp = fingerprint(
            dict(strategy=wc.strategy, params=p.strategy, n=wc.n, seed=wc.seed, grader=p.grader, engine=p.engine,
                 shard_size=p.shard_size, limit=p.limit, **({"verifier": p.verifier} if inp.prm else {}),
                 **({} if fmt.is_paper else {"format": p.format})),
            [inp.data, inp.policy, *([inp.prm] if inp.prm else [])],
        )
        records, report = run_strategy_in_shards(load, rows, p.grader, wc.strategy, p.strategy, int(wc.n),
                                                 int(wc.seed), p.shard_size, p.generation_shards, stamp, fmt)
        log.info(report)
        if code:  # after the search: no verifier has seen a result
            from infscale.evaluation.code_grading import grade_records

            log.info(grade_records(records, {str(r["id"]): r for r in rows}, threads=snakemake.threads))
        if engines and hasattr(engines[0], "prefix_cache"):
            print(f"prefix cache: {engines[0].prefix_cache}")
        write_jsonl(snakemake.output[0], records)  # the shards stay until the score job reads this output


if __name__ == "__main__":  # vLLM's engine spawns processes that import this file again
    main(snakemake)  # noqa: F821 (defined by Snakemake)
