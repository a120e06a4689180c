"""Policy and PRM model builders: tiny Pythia-architecture (GPT-NeoX) models from a size config,
or pretrained checkpoints from a local path or hub id."""
from __future__ import annotations

from pathlib import Path

# Pythia's architecture choices: parallel residual, 25% rotary, untied embeddings, 4x MLP.
PYTHIA_DEFAULTS = dict(rotary_pct=0.25, use_parallel_residual=True, tie_word_embeddings=False, hidden_act="gelu")


def gpt_neox_config(arch: dict, tokenizer):
    from transformers import GPTNeoXConfig

    hidden = int(arch["hidden_size"])
    return GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=int(arch["num_layers"]),
        num_attention_heads=int(arch["num_heads"]),
        intermediate_size=int(arch.get("intermediate_size", 4 * hidden)),
        max_position_embeddings=int(arch.get("max_position_embeddings", 256)),
        rotary_pct=float(arch.get("rotary_pct", PYTHIA_DEFAULTS["rotary_pct"])),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{k: v for k, v in PYTHIA_DEFAULTS.items() if k != "rotary_pct"},
    )


def build_causal_lm(arch: dict, tokenizer, seed: int):
    import torch
    from transformers import GPTNeoXForCausalLM

    torch.manual_seed(seed)
    return GPTNeoXForCausalLM(gpt_neox_config(arch, tokenizer))


def resolve_model_source(source: str) -> str:
    """A local directory or a hub id (`org/name`); a path-looking source that does not exist is an error."""
    p = Path(source)
    if p.exists():
        return str(p)
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise FileNotFoundError(f"model path {source!r} does not exist (and is not a hub id of the form org/name)")
    return source


def load_for_inference(path: str, auto_class: str, padding_side: str, threads: int | None = None,
                       device: str | None = None, dtype=None):
    """(tokenizer, model in eval mode, device) of a checkpoint; `auto_class` names a transformers Auto class;
    `dtype` (a torch dtype) converts the weights as they load (None: as saved)."""
    import torch
    import transformers

    if threads:
        torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = getattr(transformers, auto_class).from_pretrained(path, **kwargs).to(device).eval()
    return tokenizer, model, device


TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def leading_special_ids(tokenizer) -> list[int]:
    """The ids a tokenizer's own settings put before a text: its BOS where it adds one (Llama-2/Llemma and
    Mistral `add_bos_token`, Llama-3's template), none for GPT-NeoX/Pythia and the task tokenizer. Found by
    encoding a probe with and without special tokens; what it would append (an EOS) is not taken. Every text a
    model reads starts with them (training, generation, PRM scoring), as the released checkpoints were trained."""
    plain = tokenizer.encode("1", add_special_tokens=False)
    full = tokenizer.encode("1", add_special_tokens=True)
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start])
    return []


def add_step_tag(tokenizer, model=None) -> int:
    """Make the step tag one token of a pretrained tokenizer (Llama and Pythia tokenizers split `ки`) and grow
    the model's embeddings to match; returns the tag's id. Pad falls back to end-of-text. Under FSDP's
    cpu_ram_efficient_loading ranks other than 0 hold meta tensors: their new rows are not mean-initialised (that
    reads values, which meta tensors lack); FSDP overwrites them with rank 0's when it syncs module states."""
    from infscale.core.stepformat import STEP_TAG

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if len(tokenizer.encode(STEP_TAG, add_special_tokens=False)) != 1:
        tokenizer.add_tokens([STEP_TAG])
    embeddings = None if model is None else model.get_input_embeddings().weight
    if embeddings is not None and embeddings.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=embeddings.device.type != "meta")
    return tokenizer.convert_tokens_to_ids(STEP_TAG)


def loads_weights_here() -> bool:
    """Whether this process reads a checkpoint's weights: not on the ranks other than a node's first under
    accelerate's FSDP with cpu_ram_efficient_loading (`accelerate launch` sets ACCELERATE_USE_FSDP and
    FSDP_CPU_RAM_EFFICIENT_LOADING from resources/fsdp.yaml; the process group must exist, launch.init_distributed).
    The test transformers itself uses for that loading (transformers.integrations.is_fsdp_enabled)."""
    from transformers.integrations import is_fsdp_enabled
    from transformers.modeling_utils import is_local_dist_rank_0

    return not is_fsdp_enabled() or is_local_dist_rank_0()


def from_pretrained_for_training(auto_class: str, source: str, dtype=None, **kwargs):
    """`auto_class.from_pretrained(source)` on the rank that loads (`loads_weights_here`); on the other ranks the
    same model built from its config on the meta device, no weights read and no host memory taken. FSDP
    (sync_module_states, accelerate's param_init_fn `to_empty`) then gives those ranks storage on their GPU and
    broadcasts rank 0's weights and buffers into it. transformers 5.19's own cpu_ram_efficient_loading does not
    do this: its other ranks end with full CPU tensors of zeros (`_move_missing_keys_from_meta_to_device`), 8 x
    the model's size on a node (34B in fp32: ~1 TB)."""
    import torch
    import transformers

    cls = getattr(transformers, auto_class)
    extra = {} if dtype is None else {"dtype": dtype}
    if loads_weights_here():
        return cls.from_pretrained(source, **extra, **kwargs)
    config = transformers.AutoConfig.from_pretrained(source, **kwargs)
    with torch.device("meta"):
        return cls.from_config(config, **extra)


def load_pretrained_for_training(source: str, auto_class: str, dtype: str = "fp32", seed: int = 0, **kwargs):
    """(tokenizer, model) of a pretrained base (hub id or local directory) ready for fine-tuning in the step
    format: the step tag is one token. Under FSDP only rank 0 reads the weights (`from_pretrained_for_training`).
    Needs network for a hub id; the tests use a local directory."""
    import torch
    import transformers

    torch.manual_seed(seed)
    source = resolve_model_source(source)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = from_pretrained_for_training(auto_class, source, dtype=getattr(torch, TORCH_DTYPES[dtype]), **kwargs)
    add_step_tag(tokenizer, model)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


GATED_ORGS = ("meta-llama/", "mistralai/")  # hub models behind a licence: a token of an account that accepted it
TOKEN_HINT = ("set HF_TOKEN (or run `huggingface-cli login`) for an account that accepted the model's licence on "
              "https://huggingface.co/{source}")


def hub_token(source: str, env=None) -> str | None:
    """The Hugging Face token for `source`; a gated model without one is an error before any download."""
    import os

    from huggingface_hub import get_token

    token = (env or os.environ).get("HF_TOKEN") or get_token()
    if token is None and source.startswith(GATED_ORGS):
        raise PermissionError(f"{source} is a gated model: " + TOKEN_HINT.format(source=source))
    return token


def fetch_checkpoint(source: str, out_dir: str | Path) -> dict:
    """A released checkpoint into out_dir, as it is (hub snapshot or a copy of a local directory), with
    `source.json` recording where it came from. Written atomically."""
    import json
    import shutil

    from infscale.core.io import atomic_dir

    source = resolve_model_source(source)
    with atomic_dir(out_dir) as tmp:
        if Path(source).exists():
            shutil.copytree(source, tmp, dirs_exist_ok=True)
            record = {"source": source, "kind": "local"}
        else:
            import huggingface_hub
            from huggingface_hub.errors import GatedRepoError

            token = hub_token(source)
            # weights and tokenizer files; not optimizer states, original consolidated weights or other frameworks'
            try:
                path = huggingface_hub.snapshot_download(
                    source, local_dir=tmp, token=token,
                    ignore_patterns=["*.pth", "*.msgpack", "*.h5", "optimizer*", "original/*"])
            except GatedRepoError as e:
                raise PermissionError(f"{source}: access refused ({e}); " + TOKEN_HINT.format(source=source)) from None
            record = {"source": source, "kind": "hub", "path": str(path)}
        (Path(tmp) / "source.json").write_text(json.dumps(record, indent=1))
    return record


def non_embedding_params_of(model) -> int:
    """Parameters of a torch module, excluding nn.Embedding modules and the output projection."""
    import torch

    excluded: set[int] = set()
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            excluded.update(id(p) for p in m.parameters())
    get_out = getattr(model, "get_output_embeddings", None)
    out = get_out() if callable(get_out) else None
    if out is not None:
        excluded.update(id(p) for p in out.parameters())
    # model.parameters() yields shared (tied) parameters once.
    return sum(p.numel() for p in model.parameters() if id(p) not in excluded)
