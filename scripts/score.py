from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.policy_format import PolicyFormat
from infscale.core.runtime import job
from infscale.search.prm_scoring import check_pairing, score_records_in_shards
from infscale.search.shards import discard, fingerprint
from infscale.search.verifiers import load_verifier

p, inp = snakemake.params, snakemake.input
with job(snakemake.log[0], snakemake.threads) as log:
    if p.generation_shards:
        discard(p.generation_shards)  # Snakemake has recorded the generate job as complete
    check_pairing(inp.policy, inp.prm)
    records = read_jsonl(inp.generations, required=("id", "question", "candidates"))
    stamp = fingerprint(dict(verifier=p.verifier, format=p.format, batch_size=p.batch_size,
                             max_batch_tokens=p.max_batch_tokens, shard_size=p.shard_size), [inp.generations, inp.prm])

    def load():  # only if a shard is left to score
        return load_verifier(inp.prm, p.verifier, batch_size=p.batch_size, max_batch_tokens=p.max_batch_tokens,
                             fmt=PolicyFormat(**p.format))

    records, report = score_records_in_shards(load, records, p.shard_size, p.score_shards, stamp)
    log.info(report)
    write_jsonl(snakemake.output[0], records)  # the shards stay until a job that reads this output removes them
