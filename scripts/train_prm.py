from infscale.io import read_jsonl
from infscale.models import load_pretrained_for_training
from infscale.prm import load_prm_for_training, train_prm
from infscale.runtime import job
from infscale.tokenizer import load_tokenizer

p, inp = snakemake.params, snakemake.input
with job(snakemake.log[0], snakemake.threads):
    rows = read_jsonl(inp.data, required=("input", "label"))
    if p.base:  # a hub base with a fresh scalar head (the paper: Llemma-34B on Math-Shepherd)
        tokenizer, model = load_pretrained_for_training(p.base, "AutoModelForTokenClassification", p.train["dtype"],
                                                        p.seed, num_labels=1)
    else:  # from the policy checkpoint (its tokenizer inside) or from scratch with the task tokenizer
        tokenizer = load_tokenizer(inp.init or inp.tokenizer)
        model = load_prm_for_training(inp.init or None, p.arch, tokenizer, p.seed)
    print(train_prm(rows, tokenizer, model, p.train, snakemake.output[0], p.seed, snakemake.threads, p.label, inp.data))
