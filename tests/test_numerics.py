"""Pinned numeric paths (infscale.core.numerics): the workflow's pin overrides what the user set, a pinned training
job gives the same weights whatever the user's CPU settings, and `numerics.pin: false` leaves the environment alone."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infscale.core import numerics

# A tiny training job as the pipeline runs one: inside runtime.job (which sets its threads and logs its numeric
# state), a GPT-NeoX trained a few steps on fixed data; prints torch's kernels and a hash of the weights.
TRAIN = r"""
import hashlib, json, sys
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
from infscale.core.runtime import job

with job(sys.argv[1], threads=1):
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=128, rotary_pct=0.25))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.randint(1, 64, (6, 8, 24), generator=torch.Generator().manual_seed(1))
    for batch in data:
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        opt.zero_grad()
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(v.numpy().tobytes())
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "weights": h.hexdigest()}))
"""


def has_avx512() -> bool:
    try:
        return " avx512f " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


# What a user may have set before running the workflow: other kernels than the pin's (AVX-512 where this machine
# has it; ATen's unvectorised ones elsewhere, so that the test means the same on every machine).
USER = {"ATEN_CPU_CAPABILITY": "avx512" if has_avx512() else "default", "MKL_CBWR": "AUTO",
        "ONEDNN_MAX_CPU_ISA": "ALL"}


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in numerics.PINNED}


def test_the_pin_overrides_the_users_values_and_the_off_switch_leaves_them():
    env = {**clean_env(), **USER, "OMP_NUM_THREADS": "3"}
    pinned = dict(env)
    assert numerics.apply({}, pinned) == numerics.PINNED  # on by default
    assert pinned == {**env, "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2",
                      "DNNL_MAX_CPU_ISA": "AVX2", "INFSCALE_NUMERICS": "pinned"}
    assert pinned["OMP_NUM_THREADS"] == "3"  # threads are the job's own (Snakemake sets them per job)
    off = dict(env)
    assert numerics.apply({"numerics": {"pin": False}}, off) == {}
    assert off == env
    assert numerics.pinned_environment(env) == pinned and env != pinned  # a copy; the original is untouched


def train_in_subprocess(env: dict, log: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", TRAIN, str(log)], env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:] + (log.read_text() if log.exists() else "")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{name: (result, job log)} of the tiny training job under: the pin over a clean environment, the pin over the
    user's settings, and the user's settings with the pin off."""
    tmp = tmp_path_factory.mktemp("numerics")
    user = {**clean_env(), **USER}
    envs = {"pinned": dict(clean_env()), "pinned_over_user": dict(user), "off": dict(user)}
    numerics.apply({}, envs["pinned"])
    numerics.apply({"numerics": {"pin": True}}, envs["pinned_over_user"])
    numerics.apply({"numerics": {"pin": False}}, envs["off"])
    return {name: (train_in_subprocess(env, tmp / f"{name}.log"), (tmp / f"{name}.log").read_text())
            for name, env in envs.items()}


def test_a_pinned_training_job_gives_the_same_weights_whatever_the_users_settings(trained):
    (pinned, log), (over_user, _) = trained["pinned"], trained["pinned_over_user"]
    assert pinned["capability"] == over_user["capability"] == "AVX2"
    assert pinned["weights"] == over_user["weights"]
    # the job logs what it computed with
    assert "numerics: cpu_capability=AVX2, threads=1" in log and "MKL_CBWR=AVX2,STRICT" in log
    # MKL itself says which branch it runs (where torch has MKL, as the pip wheel on x86-64 does)
    assert "mkl_branch=AVX2,STRICT" in log or "mkl_branch=None" in log
    assert "INFSCALE_NUMERICS=pinned" in log and "WARNING" not in log


def test_the_off_switch_runs_the_users_kernels_and_they_move_the_bits(trained):
    off, log = trained["off"]
    # torch honours the user's setting: AVX-512 on this machine, the unvectorised kernels elsewhere
    assert off["capability"] == USER["ATEN_CPU_CAPABILITY"].upper()
    assert "INFSCALE_NUMERICS=None" in log and "mkl_branch=AVX2,STRICT" not in log
    # ... and the last bits move: what the pin is for
    assert off["weights"] != trained["pinned"][0]["weights"]


def test_a_pinned_job_on_other_kernels_says_so(tmp_path):
    """A pinned environment whose torch runs other kernels (an ARM machine, torch imported first) warns in the
    job's log: its digits will not match an AVX2 machine's."""
    env = numerics.pinned_environment(clean_env())
    env["ATEN_CPU_CAPABILITY"] = "default"  # stands in for a machine without AVX2
    env["MKL_CBWR"] = "COMPATIBLE"  # ... and for an MKL that runs another branch
    train_in_subprocess(env, tmp_path / "job.log")
    log = (tmp_path / "job.log").read_text()
    assert "numerics: pinned to AVX2, but torch runs DEFAULT kernels" in log
    if "mkl_branch=None" not in log:  # torch with MKL (the x86-64 pip wheel)
        assert "numerics: pinned to MKL's AVX2,STRICT branch, but MKL runs COMPATIBLE" in log
