"""Training jobs (policy SFT, PRM) from a spec: in this process on one GPU or CPU, or under
`accelerate launch` with FSDP (envs/accelerate/fsdp.yaml) when the job has several GPUs. The rule's script builds
the spec from its inputs and params; `python -m infscale.launch spec.json` is what each accelerate process runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ACCELERATE_CONFIG = Path(__file__).resolve().parents[2] / "envs" / "accelerate" / "fsdp.yaml"
SPEC_KEYS = ("kind", "data", "tokenizer", "init", "arch", "base", "train", "seed", "out", "threads", "label")


def accelerate_command(spec_path: str | Path, num_processes: int, config_file: str | Path = ACCELERATE_CONFIG,
                       python: str = sys.executable) -> list[str]:
    """`accelerate launch` of this module on one node with `num_processes` GPUs."""
    if num_processes < 2:
        raise ValueError(f"accelerate launch is for several GPUs, got {num_processes}")
    return [python, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
            "--num_processes", str(num_processes), "--num_machines", "1", "--module", "infscale.launch",
            str(spec_path)]


def run_spec(spec: dict) -> dict:
    """Train what the spec describes (kind policy or prm) and save it to spec["out"]; returns the summary."""
    from .io import read_jsonl
    from .models import build_causal_lm, load_pretrained_for_training
    from .tokenizer import load_tokenizer

    train, seed = spec["train"], spec["seed"]
    if spec["kind"] == "policy":
        from .sft import train_policy

        rows = read_jsonl(spec["data"], required=("question", "solution"))
        if spec.get("base"):  # a hub base, fine-tuned in the step format
            tokenizer, model = load_pretrained_for_training(spec["base"], "AutoModelForCausalLM", train["dtype"], seed)
        else:  # from scratch with the task tokenizer
            tokenizer = load_tokenizer(spec["tokenizer"])
            model = build_causal_lm(spec["arch"], tokenizer, seed)
        return train_policy(rows, tokenizer, model, train, spec["out"], seed, spec["threads"])
    if spec["kind"] == "prm":
        from .prm import load_prm_for_training, train_prm

        rows = read_jsonl(spec["data"], required=("input", "label"))
        if spec.get("base"):  # a hub base with a fresh scalar head (the paper: Llemma-34B on Math-Shepherd)
            tokenizer, model = load_pretrained_for_training(spec["base"], "AutoModelForTokenClassification",
                                                            train["dtype"], seed, num_labels=1)
        else:  # from the policy checkpoint (its tokenizer inside) or from scratch with the task tokenizer
            tokenizer = load_tokenizer(spec.get("init") or spec["tokenizer"])
            model = load_prm_for_training(spec.get("init") or None, spec.get("arch"), tokenizer, seed)
        return train_prm(rows, tokenizer, model, train, spec["out"], seed, spec["threads"], spec["label"], spec["data"])
    raise ValueError(f"training spec kind must be policy or prm, got {spec['kind']!r}")


def train(spec: dict, gpus: int = 0) -> dict | None:
    """In this process (gpus <= 1), or through accelerate on `gpus` GPUs: the spec goes to a file beside the
    output, each process reads it; output of the processes goes to this job's stdout/stderr (its log)."""
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown training spec key(s) {', '.join(sorted(unknown))}")
    if gpus <= 1:
        return run_spec(spec)
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_path = out.parent / f".{out.name}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    try:
        subprocess.run(accelerate_command(spec_path, gpus), check=True, stdout=sys.stdout, stderr=sys.stderr)
    finally:
        spec_path.unlink(missing_ok=True)
    summary = out / "training_summary.json"
    return json.loads(summary.read_text()) if summary.exists() else None


if __name__ == "__main__":
    print(run_spec(json.loads(Path(sys.argv[1]).read_text())))
