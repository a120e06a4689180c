from infscale.engines import make_engine
from infscale.io import read_jsonl, write_jsonl
from infscale.runtime import job
from infscale.strategies import generate_candidates

p, wc = snakemake.params, snakemake.wildcards
with job(snakemake.log[0], snakemake.threads):
    rows = read_jsonl(snakemake.input.data, required=("id", "question", "answer"))[: p.limit]
    engine = make_engine(p.engine["name"], snakemake.input.policy, batch_size=p.engine["batch_size"])
    records = generate_candidates(engine, rows, p.grader, wc.strategy, p.strategy, int(wc.n), int(wc.seed))
    write_jsonl(snakemake.output[0], records)
