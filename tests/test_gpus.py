"""Device claims for one-workstation runs, without a GPU: the device count is faked."""
import subprocess
import sys
import textwrap

import pytest

from infscale.core import gpus
from infscale.core.runtime import job


@pytest.fixture
def env(tmp_path):
    return {gpus.COUNT_ENV: "2", gpus.LOCK_DIR_ENV: str(tmp_path / "locks")}


def test_claims_free_devices_and_releases_them(env):
    with gpus.claim(1, env) as first:
        assert first == ["0"] and env["CUDA_VISIBLE_DEVICES"] == "0"
        other = dict(env)
        other.pop("CUDA_VISIBLE_DEVICES")
        with gpus.claim(1, other) as second:  # a concurrent job gets the other device
            assert second == ["1"] and other["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in env
    with gpus.claim(2, env) as both:  # released at the end of each block
        assert both == ["0", "1"] and env["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_a_second_process_waits_until_the_device_is_free(env, tmp_path):
    probe = textwrap.dedent(f"""
        import time
        from infscale.core import gpus
        env = {dict(env)!r}
        start = time.time()
        with gpus.claim(2, env, poll_s=0.1) as ids:
            print(ids, round(time.time() - start, 1))
    """)
    with gpus.claim(1, env):
        child = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True)
        import time

        time.sleep(1.5)
        assert child.poll() is None  # one of its two devices is held here
    out, _ = child.communicate(timeout=30)
    ids, waited = out.rsplit(" ", 1)
    assert ids == "['0', '1']" and float(waited) >= 1.0


def test_a_crashed_holder_frees_its_device(env):
    code = f"from infscale.core import gpus; import os\nwith gpus.claim(2, {dict(env)!r}): os._exit(3)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 3
    with gpus.claim(2, env) as ids:
        assert ids == ["0", "1"]


def test_no_gpu_asked_or_slurm_assigned_changes_nothing(env):
    with gpus.claim(0, env) as ids:
        assert ids == [] and "CUDA_VISIBLE_DEVICES" not in env
    slurm = dict(env, SLURM_JOB_ID="7", CUDA_VISIBLE_DEVICES="0")
    with gpus.claim(1, slurm) as ids:
        assert ids == [] and slurm["CUDA_VISIBLE_DEVICES"] == "0"


def test_picks_only_among_user_visible_devices(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "2,3", gpus.LOCK_DIR_ENV: str(tmp_path)}
    other = dict(env)
    with gpus.claim(1, env) as first, gpus.claim(1, other) as second:
        assert (first, second) == (["2"], ["3"])
    with pytest.raises(RuntimeError, match="asks for 3 GPU"), gpus.claim(3, env):
        pass


def test_job_claims_the_scripts_gpu_resource(env, tmp_path, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)

    class Resources(dict):
        pass

    class FakeSnakemake:  # what Snakemake puts into a script's __main__
        resources = Resources(gpu=1)

    monkeypatch.setattr(sys.modules["__main__"], "snakemake", FakeSnakemake(), raising=False)
    import os

    with job(str(tmp_path / "job.log")):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert "CUDA_VISIBLE_DEVICES=0" in (tmp_path / "job.log").read_text()


@pytest.mark.workflow
def test_local_profile_gives_model_jobs_one_gpu_and_a_device(tmp_path):
    """profiles/local for real on one small job, with one faked GPU: the job's log names its device."""
    import os

    from workflow_runs import ROOT, planned_jobs, snakemake

    profile = ["--profile", str(ROOT / "profiles" / "local")]
    dry = snakemake(tmp_path, *profile, "-n")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert (dry.stdout + dry.stderr).count("gpu=1") == sum(planned_jobs(dry)[r] for r in
                                            ("train_policy", "label_prm_data", "train_prm", "generate", "score"))
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update({gpus.COUNT_ENV: "1", gpus.LOCK_DIR_ENV: str(tmp_path / "locks")})
    # prepare_data is light (no GPU in the profile); ask for one to see the claim inside a real script job.
    result = snakemake(tmp_path, *profile, "--set-resources", "prepare_data:gpu=1", "--nolock",
                       "results/data/toy/test.jsonl", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CUDA_VISIBLE_DEVICES=0" in (tmp_path / "results" / "logs" / "prepare_data" / "toy_test.log").read_text()


def test_gpu_memory_is_read_from_nvidia_smi_without_cuda(tmp_path, monkeypatch):
    """What `train.offload: auto` compares its memory plan with: the smallest GPU nvidia-smi lists (MiB)."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '81559\\n40960\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert gpus.device_memory_bytes({}) == 40960 * 2**20
    assert gpus.device_memory_bytes({gpus.MEMORY_ENV: "79.6"}) == int(79.6 * 2**30)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert gpus.device_memory_bytes({}) is None  # no GPU: unknown, and auto offloads to be safe
