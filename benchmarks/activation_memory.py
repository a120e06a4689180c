"""Measure the activation memory a training step keeps, per architecture and precision, on CPU with tiny layers.

    python benchmarks/activation_memory.py [--out benchmarks/results]

For each architecture the configs train (GPT-NeoX: Pythia; Llama: Llemma 7B/34B; Llama with Llama-3's MLP and
grouped-query attention; Mistral), in fp32 and in bf16 (what FSDP's bf16 mixed precision computes in), a forward
pass of a causal LM with its loss is run under `torch.autograd.graph.saved_tensors_hooks`: the bytes of every
distinct storage saved for the backward pass, parameters excluded (FSDP's gathered weights are counted apart).
Per layer: the difference between 3 layers and 1, divided by tokens x hidden ("bytes a token, layer and hidden
unit"). With gradient checkpointing (non-reentrant, as the Trainer runs it) a checkpointed layer saves nothing in
the forward pass; what it keeps is the inputs handed to the checkpoint (recorded by wrapping each layer's
checkpoint function), and during the backward pass one layer at a time is recomputed (its no-checkpointing
figure). The logits: the same difference between two vocabulary sizes, per token and vocabulary entry.
Attention runs without a padding mask (SDPA's causal kernels, which save no sequence-squared tensors, as flash or
memory-efficient attention on a GPU); the per-token figures at two sequence lengths are checked to agree.

Writes activation_memory.json (read by tests/test_memory_plan.py, which checks infscale.training.memory's
constants against it) and activation_memory.md, with this command."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HIDDEN, HEADS, BATCH = 256, 4, 2
# intermediate / hidden and key-value heads of the paper's models: Pythia 4x (MHA), Llemma 11008/4096 = 22016/8192
# (7B MHA, 34B GQA 8:1: the MLP ratio is what matters), Llama-3-8B 14336/4096 with GQA 4:1, Mistral-7B the same.
ARCHS = {
    "gpt_neox": dict(ratio=4.0, kv_heads=HEADS),
    "llama": dict(ratio=2.6875, kv_heads=HEADS),
    "llama3": dict(ratio=3.5, kv_heads=1),
    "mistral": dict(ratio=3.5, kv_heads=1),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def build(arch: str, layers: int, vocab: int, dtype):
    from transformers import (
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
    )

    spec = ARCHS[arch]
    inter = int(spec["ratio"] * HIDDEN)
    torch.manual_seed(0)
    if arch == "gpt_neox":
        model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=layers,
                                                 num_attention_heads=HEADS, intermediate_size=inter, rotary_pct=0.25,
                                                 use_parallel_residual=True, tie_word_embeddings=False,
                                                 attention_dropout=0.0, hidden_dropout=0.0))
    else:
        config_class, model_class = (MistralConfig, MistralForCausalLM) if arch == "mistral" else \
            (LlamaConfig, LlamaForCausalLM)
        model = model_class(config_class(vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=layers,
                                         num_attention_heads=HEADS, num_key_value_heads=spec["kv_heads"],
                                         intermediate_size=inter, tie_word_embeddings=False))
    model.config._attn_implementation = "sdpa"
    return model.to(dtype).train()


def saved_bytes(model, tokens: int, checkpointing: bool) -> int:
    """Bytes of distinct storages the forward pass of `model` on BATCH x tokens keeps for the backward pass:
    saved tensors and, under checkpointing, each checkpointed layer's inputs. Parameters are not counted."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def keep(t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            ptr = t.untyped_storage().data_ptr()
            if ptr not in params:
                seen[ptr] = t.untyped_storage().nbytes()

    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():
            inner = getattr(module, "_gradient_checkpointing_func", None)
            if inner is not None and getattr(module, "gradient_checkpointing", False):
                def spy(function, *args, _inner=inner, **kwargs):
                    for a in (*args, *kwargs.values()):
                        for t in (a if isinstance(a, (tuple, list)) else (a,)):
                            keep(t)
                    return _inner(function, *args, **kwargs)

                module._gradient_checkpointing_func = spy
    ids = torch.randint(0, model.config.vocab_size, (BATCH, tokens), generator=torch.Generator().manual_seed(1))

    def pack(t):
        keep(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()  # the graph was complete
    return sum(seen.values())


def measure(arch: str, dtype_name: str, tokens: int, vocab: int = 512) -> dict:
    dtype = DTYPES[dtype_name]
    out = {}
    for ckpt in (False, True):
        one, three = (saved_bytes(build(arch, n, vocab, dtype), tokens, ckpt) for n in (1, 3))
        out["checkpointing" if ckpt else "plain"] = (three - one) / 2 / (BATCH * tokens * HIDDEN)
    wide = saved_bytes(build(arch, 1, 2 * vocab, dtype), tokens, False)
    narrow = saved_bytes(build(arch, 1, vocab, dtype), tokens, False)
    out["logits"] = (wide - narrow) / (BATCH * tokens * vocab)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results, rows = {}, []
    for arch in ARCHS:
        for dtype_name in DTYPES:
            short, long = measure(arch, dtype_name, 64), measure(arch, dtype_name, 128)
            for key in short:  # no sequence-squared term: the per-token figure does not grow with length
                if abs(long[key] - short[key]) > 0.02 * max(1.0, short[key]):
                    raise SystemExit(f"{arch} {dtype_name} {key}: {short[key]:.2f} at 64 tokens, {long[key]:.2f} "
                                     "at 128: the figure grows with sequence length")
            results.setdefault(arch, {})[dtype_name] = {k: round(v, 2) for k, v in long.items()}
            rows.append(f"| {arch} | {dtype_name} | {long['plain']:.2f} | {long['checkpointing']:.2f} | "
                        f"{long['logits']:.2f} |")
    command = "python benchmarks/activation_memory.py"
    import transformers

    meta = {"command": command, "torch": torch.__version__, "transformers": transformers.__version__,
            "hidden": HIDDEN, "heads": HEADS, "batch": BATCH, "tokens": 128,
            "units": "bytes a token x layer x hidden unit (plain, checkpointing); a token x vocabulary entry (logits)"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "activation_memory.json").write_text(json.dumps({"meta": meta, "bytes": results}, indent=1) + "\n")
    md = ["# Activation memory a training step keeps (measured on CPU)", "", f"`{command}` (torch {torch.__version__}, "
          f"transformers {transformers.__version__}; hidden {HIDDEN}, {HEADS} heads, batch {BATCH} x 128 tokens; "
          "saved-tensor hooks, parameters excluded).", "",
          "| architecture | compute dtype | bytes / (token x layer x hidden), no checkpointing | kept with "
          "gradient checkpointing | logits: bytes / (token x vocab entry) |", "|---|---|---|---|---|", *rows, ""]
    (out / "activation_memory.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
