from infscale.io import read_jsonl
from infscale.prm import load_prm_for_training, train_prm
from infscale.runtime import job
from infscale.tokenizer import load_tokenizer

p, inp = snakemake.params, snakemake.input
with job(snakemake.log[0], snakemake.threads):
    tokenizer = load_tokenizer(inp.tokenizer)
    rows = read_jsonl(inp.data, required=("input", "label"))
    model = load_prm_for_training(inp.init or None, p.arch, tokenizer, p.seed)
    print(train_prm(rows, tokenizer, model, p.train, snakemake.output[0], p.seed, snakemake.threads, p.label, inp.data))
