from infscale.io import read_jsonl
from infscale.models import build_causal_lm
from infscale.runtime import job
from infscale.sft import train_policy
from infscale.tokenizer import load_tokenizer

p = snakemake.params
with job(snakemake.log[0], snakemake.threads):
    tokenizer = load_tokenizer(snakemake.input.tokenizer)
    rows = read_jsonl(snakemake.input.data, required=("question", "solution"))
    model = build_causal_lm(p.arch, tokenizer, p.seed)
    print(train_policy(rows, tokenizer, model, p.train, snakemake.output[0], p.seed, snakemake.threads))
