from infscale.engines import make_engine
from infscale.io import read_jsonl, write_jsonl
from infscale.prm import ProcessRewardModel, check_pairing
from infscale.runtime import job
from infscale.shards import discard, fingerprint
from infscale.strategies import run_strategy_in_shards

p, wc, inp = snakemake.params, snakemake.wildcards, snakemake.input


def load():
    prm = None
    if inp.prm:  # tree search scores partial solutions while it searches
        check_pairing(inp.policy, inp.prm)
        prm = ProcessRewardModel(inp.prm, batch_size=p.engine["batch_size"])
    return make_engine(p.engine["name"], inp.policy, batch_size=p.engine["batch_size"]), prm


with job(snakemake.log[0], snakemake.threads) as log:
    rows = read_jsonl(inp.data, required=("id", "question", "answer"))[: p.limit]
    stamp = fingerprint(
        dict(strategy=wc.strategy, params=p.strategy, n=wc.n, seed=wc.seed, grader=p.grader, engine=p.engine,
             shard_size=p.shard_size, limit=p.limit),
        [inp.data, inp.policy, *([inp.prm] if inp.prm else [])],
    )
    records, report = run_strategy_in_shards(load, rows, p.grader, wc.strategy, p.strategy, int(wc.n), int(wc.seed),
                                             p.shard_size, p.checkpoint, stamp)
    log.info(report)
    write_jsonl(snakemake.output[0], records)
    discard(p.checkpoint)
