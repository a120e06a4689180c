"""Which numeric settings make CPU training and sampling bit-identical across x86-64 machines, and what they cost.

    python benchmarks/numerics.py [--steps 40] [--repeats 2]
    python benchmarks/numerics.py --cost 5 [--steps 40]    # only what the pin costs: pinned and unpinned alternately

A fixed short training of a pythia-m-sized GPT-NeoX (config.yaml's arch: hidden 80, 3 layers, 2 heads; batch 32 of
toy-task solutions, character tokens, AdamW at 3e-3, seed 0, one thread) runs in a fresh process per setting (the
variables are read when torch and MKL load), `--repeats` times each: its final loss, a hash of its weights and its
time. Then each process samples 8 solutions to each of 8 questions (T = 1, seed 0) from one shared set of weights
(the first pinned run's): a hash of the tokens and of the logits. Writes benchmarks/results/numerics.md and .json.
`--cost K` runs the pinned setting, the unpinned one and the pin with MKL's COMPATIBLE branch alternately K times
each and writes numerics_cost.md: wall and CPU seconds (the CPU time of the process, less sensitive to a shared
machine's load).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from infscale.core.numerics import PINNED  # noqa: E402

ARCH = {"hidden_size": 80, "num_layers": 3, "num_heads": 2}  # config.yaml's pythia-m
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2"}
CBWR = {"MKL_CBWR": "AVX2,STRICT"}
ONEDNN = {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}
CASES = [
    ("pinned (infscale: numerics.pin true)", dict(PINNED)),
    ("nothing set (the machine's own kernels)", {}),
    ("ATEN_CPU_CAPABILITY=avx2", AVX2),
    ("ATEN_CPU_CAPABILITY=avx2 + MKL_CBWR=AVX2,STRICT", {**AVX2, **CBWR}),
    ("+ ONEDNN_MAX_CPU_ISA=AVX2 (= the pin)", {**AVX2, **CBWR, **ONEDNN}),
    ("MKL_CBWR=AVX2,STRICT only", CBWR),
    ("ONEDNN_MAX_CPU_ISA=AVX2 only", ONEDNN),
    ("ATEN_CPU_CAPABILITY=avx512 (a user's setting)", {"ATEN_CPU_CAPABILITY": "avx512"}),
    ("the pin over a user's ATEN_CPU_CAPABILITY=avx512", {"ATEN_CPU_CAPABILITY": "avx512", **PINNED}),
    ("ATEN_CPU_CAPABILITY=default (no vector kernels)", {"ATEN_CPU_CAPABILITY": "default"}),
]


class CharTokenizer:
    """What gpt_neox_config needs of a tokenizer: its size and the eos / pad ids."""

    def __init__(self, texts):
        self.vocab = {c: i + 1 for i, c in enumerate(sorted(set("".join(texts))))}  # 0: eos and pad
        self.eos_token_id = self.pad_token_id = 0

    def __len__(self):
        return len(self.vocab) + 1

    def encode(self, text):
        return [self.vocab[c] for c in text]


def digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def child(steps: int, weights: str, save: bool) -> dict:
    import torch
    from transformers import GPTNeoXForCausalLM

    from infscale.core.models import gpt_neox_config
    from infscale.core.toytask import make_split

    torch.set_num_threads(1)
    batch = 32
    rows = make_split(steps * batch, seed=0, split="train", carry_rate=0.0, order="random", carry_free="every_order")
    texts = [f"{r['question']}\n{r['solution']}" for r in rows]
    tok = CharTokenizer(texts)
    ids = [tok.encode(t) + [0] for t in texts]
    width = max(map(len, ids))
    x = torch.tensor([s + [0] * (width - len(s)) for s in ids])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids])
    labels = x.masked_fill(mask == 0, -100)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(gpt_neox_config(ARCH, tok))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    start, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        b = slice(step * batch, (step + 1) * batch)
        loss = model(input_ids=x[b], attention_mask=mask[b], labels=labels[b]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    state = model.state_dict()
    out = {"capability": torch.backends.cpu.get_cpu_capability(), "loss": repr(loss.item()),
           "weights": digest(state[k] for k in sorted(state)), "train_s": round(train_s, 2),
           "train_cpu_s": round(train_cpu_s, 2)}
    if save:
        torch.save(state, weights)
    model.load_state_dict(torch.load(weights))
    model.eval()
    prompts = [tok.encode(r["question"] + "\n") for r in rows[:8]]
    tokens, scores = [], []
    start = time.perf_counter()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in prompts:
            g = model.generate(torch.tensor([p]), do_sample=True, temperature=1.0, top_k=0, max_new_tokens=48,
                               num_return_sequences=8, pad_token_id=0, eos_token_id=0, output_scores=True,
                               return_dict_in_generate=True)
            tokens.append(g.sequences)
            scores += list(g.scores)
    out.update(sample_tokens=digest(tokens), sample_logits=digest(scores),
               sample_s=round(time.perf_counter() - start, 2))
    return out


def run_case(env_vars: dict, steps: int, weights: str, save: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PINNED}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **env_vars)
    cmd = [sys.executable, __file__, "--child", "--steps", str(steps), "--weights", weights]
    cmd += ["--save"] if save else []
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"child failed ({env_vars}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--calib", default=None, help="seconds of /work/shared/tools/calib.py around the run")
    ap.add_argument("--cost", type=int, default=0, help="only time the pin: K runs each of pinned and unpinned")
    ap.add_argument("--render", action="store_true", help="rewrite numerics.md from numerics.json")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.steps, args.weights, args.save)))
        return
    if args.cost:
        cost(args.cost, args.steps, args.calib)
        return
    if args.render:
        report = json.loads((ROOT / "benchmarks" / "results" / "numerics.json").read_text())
        render(report)
        return
    import torch

    weights = str(Path(tempfile.mkdtemp(prefix="numerics-")) / "weights.pt")
    rows = []
    for r in range(args.repeats):  # repeats interleaved: machine load drifts between them, not within a setting
        for i, (name, env_vars) in enumerate(CASES):
            res = run_case(env_vars, args.steps, weights, save=(r == 0 and i == 0))
            rows.append({"setting": name, "repeat": r, **res})
            print(rows[-1], flush=True)
    report = {"cpu": cpu_model(), "machine": platform.machine(), "torch": torch.__version__,
              "mkl": torch.backends.mkl.is_available(), "mkldnn": torch.backends.mkldnn.is_available(),
              "date": time.strftime("%Y-%m-%d %H:%M"),
              "calib_s": f"{args.calib} s" if args.calib else None, "steps": args.steps, "rows": rows}
    (ROOT / "benchmarks" / "results" / "numerics.json").write_text(json.dumps(report, indent=1) + "\n")
    render(report)


def render(report: dict) -> None:
    """benchmarks/results/numerics.md from the run's report (numerics.json; --render redoes it)."""
    rows = report["rows"]
    pinned = next(x for x in rows if x["setting"] == CASES[0][0])
    calib = report.get("calib_s")
    lines = ["# Numeric settings: the same bits on every Intel x86-64 machine with AVX2 (`python "
             "benchmarks/numerics.py`)", "",
             f"{report.get('machine', 'x86_64')}, {report['cpu']}; torch {report.get('torch', '?')} (MKL: "
             f"{report.get('mkl', '?')}, oneDNN: {report.get('mkldnn', '?')}); {report.get('date', '?')} UTC"
             + (f"; calib.py {calib}" if calib else ""), "",
             f"Training: a pythia-m-sized GPT-NeoX ({ARCH}), {report.get('steps', 40)} steps of batch 32, one thread, "
             "seed 0, a fresh process per setting and repeat. Sampling: 8 x 8 solutions at T = 1, seed 0, from the "
             "first pinned run's weights (the same weights for every setting). `=` marks a hash equal to the pinned "
             "run's. Wall seconds on a shared machine say little; CPU seconds are the process's own.", "",
             "| setting | repeat | torch kernels | final loss | weights | sampled tokens | sampled logits | "
             "train wall (s) | train CPU (s) | sample wall (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        same = {k: "= " if x[k] == pinned[k] else "" for k in ("weights", "sample_tokens", "sample_logits")}
        lines.append(f"| {x['setting']} | {x['repeat']} | {x['capability']} | {x['loss']} | {same['weights']}"
                     f"`{x['weights']}` | {same['sample_tokens']}`{x['sample_tokens']}` | {same['sample_logits']}"
                     f"`{x['sample_logits']}` | {x['train_s']} | {x.get('train_cpu_s', '')} | {x['sample_s']} |")
    (ROOT / "benchmarks" / "results" / "numerics.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def cost(k: int, steps: int, calib) -> None:
    import statistics

    # pinned, nothing set, and the pin with MKL's COMPATIBLE branch (SSE2 without approximate reciprocals: the one
    # branch MKL documents to give the same results on non-Intel processors, AMD's among them)
    cases = CASES[:2] + [("pinned with MKL_CBWR=COMPATIBLE,STRICT", {**PINNED, "MKL_CBWR": "COMPATIBLE,STRICT"})]
    tmp = Path(tempfile.mkdtemp(prefix="numerics-cost-"))
    rows = []
    for r in range(k):
        for i, (name, env_vars) in enumerate(cases):
            res = run_case(env_vars, steps, str(tmp / f"w{r}_{i}.pt"), save=True)
            rows.append({"setting": name, "repeat": r, **res})
            print(rows[-1], flush=True)
    med = {name: {key: statistics.median(x[key] for x in rows if x["setting"] == name)
                  for key in ("train_s", "train_cpu_s", "sample_s")} for name, _ in cases}
    pinned, free, compatible = (med[name] for name, _ in cases)
    lines = [f"# What the numeric pin costs (`python benchmarks/numerics.py --cost {k} --steps {steps}`)", "",
             f"{cpu_model()}; {time.strftime('%Y-%m-%d %H:%M')} UTC" + (f"; calib.py {calib}" if calib else "")
             + f". The training and sampling of benchmarks/numerics.py ({steps} steps), pinned, unpinned and pinned "
             f"with MKL's COMPATIBLE branch alternately, {k} times each, one thread; medians.", "",
             "| setting | train wall (s) | train CPU (s) | sample wall (s) |", "|---|---|---|---|"]
    lines += [f"| {name} | {m['train_s']:.2f} | {m['train_cpu_s']:.2f} | {m['sample_s']:.2f} |"
              for name, m in med.items()]
    lines += ["", f"Pinned over unpinned: training {pinned['train_cpu_s'] / free['train_cpu_s']:.2f}x CPU time "
              f"({pinned['train_s'] / free['train_s']:.2f}x wall), sampling "
              f"{pinned['sample_s'] / free['sample_s']:.2f}x wall. With MKL's COMPATIBLE branch: training "
              f"{compatible['train_cpu_s'] / free['train_cpu_s']:.2f}x CPU time, sampling "
              f"{compatible['sample_s'] / free['sample_s']:.2f}x wall.", "",
              "| setting | repeat | train wall (s) | train CPU (s) | sample wall (s) |", "|---|---|---|---|---|"]
    lines += [f"| {x['setting']} | {x['repeat']} | {x['train_s']} | {x['train_cpu_s']} | {x['sample_s']} |"
              for x in rows]
    out = ROOT / "benchmarks" / "results" / "numerics_cost.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
