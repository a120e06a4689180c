from infscale.io import read_jsonl
from infscale.models import build_causal_lm, load_pretrained_for_training
from infscale.runtime import job
from infscale.sft import train_policy
from infscale.tokenizer import load_tokenizer

p = snakemake.params
with job(snakemake.log[0], snakemake.threads):
    rows = read_jsonl(snakemake.input.data, required=("question", "solution"))
    if p.base:  # a hub base, fine-tuned in the step format
        tokenizer, model = load_pretrained_for_training(p.base, "AutoModelForCausalLM", p.train["dtype"], p.seed)
    else:  # from scratch, with the task tokenizer
        tokenizer = load_tokenizer(snakemake.input.tokenizer)
        model = build_causal_lm(p.arch, tokenizer, p.seed)
    print(train_policy(rows, tokenizer, model, p.train, snakemake.output[0], p.seed, snakemake.threads))
