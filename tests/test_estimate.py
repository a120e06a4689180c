"""The compute estimate of a study (docs/paper.md quotes it for config/paper.yaml)."""
import copy
from pathlib import Path

import pytest
import yaml

from infscale.core.validation import validate_config
from infscale.estimate import TRAIN_DATA, estimate, main, training_flops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def paper():
    return validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))


def test_training_is_6n_per_token():
    rows, tokens = TRAIN_DATA["metamath"]
    assert training_flops(7_000_000_000, {"epochs": 1, "batch_size": 128}, "metamath") == 6 * 7e9 * rows * tokens
    assert training_flops(10, {"steps": 3, "batch_size": 4}, "metamath") == 6 * 10 * 12 * tokens


def test_paper_estimate_has_every_stage(paper):
    stages = {s.stage: s for s in estimate(paper)}
    assert set(stages) == {"train_policy", "train_prm", "generate", "score"}
    assert stages["generate"].jobs == 416 and stages["train_policy"].jobs == 9
    assert stages["score"].jobs == 50  # sampled runs only: a tree search scores inside its generate job
    assert all(s.flops > 0 and s.gpu_hours() > 0 for s in stages.values())


def test_generation_scales_with_seeds(paper):
    more = copy.deepcopy(paper)
    more["seeds"] = paper["seeds"] * 2
    gen = {s.stage: s.flops for s in estimate(paper)}
    gen2 = {s.stage: s.flops for s in estimate(more)}
    greedy_share = gen2["generate"] < 2 * gen["generate"]  # greedy runs once whatever the seeds
    assert greedy_share and gen2["generate"] > 1.9 * gen["generate"] and gen2["train_policy"] == gen["train_policy"]


def test_table3_is_counted(paper):
    """Table 3 (MBPP, Llama3-8B-Instruct zero-shot): 15 generation runs of 500 problems, sampling once at 64 and
    REBASE at 8-64, 3 seeds; its policy is fetched, never trained."""
    without = copy.deepcopy(paper)
    del without["figures"]["table3_mbpp"]
    stages, fewer = ({s.stage: s for s in estimate(c)} for c in (paper, without))
    assert stages["generate"].jobs - fewer["generate"].jobs == 15 and stages["score"].jobs - fewer["score"].jobs == 3
    assert stages["train_policy"].jobs == fewer["train_policy"].jobs
    # more than sampling's own tokens at 64: 3 seeds x 500 problems x 64 x 150 tokens written, 2N FLOPs each
    sampling_tokens = 3 * 500 * 64 * 150
    assert stages["generate"].flops - fewer["generate"].flops > 2 * 6979588096 * sampling_tokens


def test_missing_params_names_the_key(paper):
    del paper["models"]["llemma-7b"]["params"]
    with pytest.raises(ValueError, match="models.llemma-7b.params"):
        estimate(paper)


def test_command_prints_hours_memory_and_disk(capsys):
    main([str(ROOT / "config" / "paper.yaml")])
    out = capsys.readouterr().out
    assert out.startswith("| stage | jobs | FLOPs | GPU hours | of which idle |") and "| total |" in out
    assert "| llemma-34b | 8 |" in out and "| llemma-34b-rm | 8 |" in out  # the memory plan of each training job
    assert "| peak: everything kept + the checkpoints of all training jobs at once |" in out


def test_training_runs_at_the_peak_of_its_compute_precision():
    """Table 2's FP32 without mixed precision does not reach the BF16 peak: fp32 compute counts at FP32's."""
    from infscale.estimate import H100_BF16_TFLOPS, H100_FP32_TFLOPS, Hardware, training_job

    fp32 = {"epochs": 1, "batch_size": 128, "dtype": "fp32"}
    hours = {k: training_job("train_policy", "m", 10**9, t, "metamath", 8, Hardware()).hours["compute"]
             for k, t in {"fp32": fp32, "mixed": {**fp32, "mixed_precision": "bf16"},
                          "bf16": {**fp32, "dtype": "bf16"}}.items()}
    assert hours["fp32"] == pytest.approx(hours["mixed"] * H100_BF16_TFLOPS / H100_FP32_TFLOPS)
    assert hours["mixed"] == hours["bf16"]
    assert training_flops(10, {"steps": 1, "batch_size": 1, "gradient_checkpointing": True}, "metamath") == \
        8 * 10 * TRAIN_DATA["metamath"][1]  # the forward pass again


def test_paper_policies_train_in_table2s_fp32_and_34b_in_bf16_over_fp32_master_weights(paper):
    from infscale.estimate import compute_kind

    trained = {slug: m for slug, m in paper["models"].items() if "train" in m}  # not Table 3's released model
    kinds = {slug: compute_kind(m["train"]) for slug, m in trained.items()}
    assert {k for slug, k in kinds.items() if slug != "llemma-34b"} == {"fp32"} and kinds["llemma-34b"] == "bf16"
    assert {m["train"]["dtype"] for m in trained.values()} == {"fp32"}


def test_tree_search_jobs_hold_their_gpus_while_the_prm_scores(paper):
    """A tree search's GPUs wait while the PRM scores: a larger PRM costs generate GPU hours, not only FLOPs,
    and the policy's GPUs count as idle meanwhile (and the PRM's while the policy decodes)."""
    bigger = copy.deepcopy(paper)
    bigger["prm"]["params"] = paper["prm"]["params"] * 2
    gen = {s.stage: s for s in estimate(paper)}["generate"]
    gen2 = {s.stage: s for s in estimate(bigger)}["generate"]
    assert gen2.flops == gen.flops and gen2.gpu_hours() > 1.3 * gen.gpu_hours()
    tree = [p for p in gen.parts if p.what == "compute" and p.held > p.busy]
    assert tree and gen.idle_hours() >= sum(p.seconds * (p.held - p.busy) for p in tree) / 3600 > 0
    no_tree = copy.deepcopy(paper)
    no_tree["evaluate"]["strategies"] = ["greedy", "sampling"]
    no_tree["figures"] = {}
    assert {s.stage: s for s in estimate(no_tree)}["generate"].idle_hours() == pytest.approx(
        {s.stage: s for s in estimate(no_tree)}["generate"].hours_of("load"))  # sampled jobs use all their GPUs


def test_every_prm_call_reads_the_prompt_again(paper):
    from infscale.estimate import PROMPT_TOKENS, SOLUTION_TOKENS, generation_tokens, prm_tokens_computed

    generated, read = generation_tokens(paper, "gsm8k", "llemma-7b", "sampling")
    assert read == pytest.approx(generated * (PROMPT_TOKENS["gsm8k"] + SOLUTION_TOKENS["gsm8k"]) / SOLUTION_TOKENS["gsm8k"])
    g_tree, r_tree = generation_tokens(paper, "math500", "llemma-7b", "rebase")
    assert r_tree > 3 * g_tree  # each node re-reads the prompt and its path (the paper's FLOPs)
    # what the PRM computes: shared prefixes once (a problem's prompt, a node's siblings' path)
    assert prm_tokens_computed(paper, "math500", "rebase", 32) < 0.5 * 500 * 32 * 1.2 * (r_tree / g_tree) * 300
    assert prm_tokens_computed(paper, "gsm8k", "sampling", 8) == 1319 * (80 + 8 * 180)


def test_loading_counts_in_every_job(paper):
    from infscale.estimate import Hardware

    stages = {s.stage: s for s in estimate(paper)}
    slow = {s.stage: s for s in estimate(paper, Hardware(read_gbps=0.2))}
    for stage in ("generate", "score", "train_policy"):
        assert stages[stage].hours_of("load") > 0
        assert slow[stage].hours_of("load") > 1.5 * stages[stage].hours_of("load")  # weights read 10x slower
        assert slow[stage].gpu_hours() - stages[stage].gpu_hours() == pytest.approx(
            slow[stage].hours_of("load") - stages[stage].hours_of("load"))


def test_offload_is_counted_at_the_speed_of_pcie_and_the_cpu(paper):
    """On 80 GB GPUs the 34B jobs fit without offload; on 40 GB the plan offloads and a step waits for the
    transfers and the CPU Adam step: many times the compute (issue 21: 30-50 s a step at micro-batch 1; packed
    micro-batches of 2 halve the transfers: ~29 s)."""
    from infscale.estimate import Hardware, training_jobs

    fits = {j.name: j for j in training_jobs(paper)}
    small = {j.name: j for j in training_jobs(paper, Hardware(gpu_memory_gib=40))}
    assert not fits["llemma-34b"].offload and not fits["llemma-34b-rm"].offload
    assert fits["llemma-34b"].hours["offload"] == 0
    job = small["llemma-34b"]
    assert job.offload and small["llemma-34b-rm"].offload and not small["llemma-7b"].offload
    steps = 395_000 / 128
    assert 20 < job.hours["offload"] * 3600 / steps < 60  # seconds a step beyond compute
    assert job.wall_h > 5 * fits["llemma-34b"].wall_h


def test_disk_of_a_study(paper):
    from infscale.estimate import disk

    d = disk(paper)
    n34 = paper["models"]["llemma-34b"]["params"]
    assert d.largest_job == ("llemma-34b", pytest.approx(2 * 12 * n34))  # two checkpoints: fp32 weights + Adam
    kept = dict(d.rows)
    assert kept["trained policies and PRM (save_dtype)"] == pytest.approx(
        2 * (sum(m["params"] for m in paper["models"].values() if "train" in m) + paper["prm"]["params"]))
    assert 2e12 < d.kept + d.training_peak < 5e12 and d.kept < 1e12


def test_a_policy_likelihood_verifier_costs_its_policys_parameters(paper):
    """Scoring with a policy's likelihood reads the policy's parameters, as a PRM of that size would."""
    policy = next(iter(paper["models"]))
    as_prm = copy.deepcopy(paper)
    as_prm["prm"]["params"] = int(paper["models"][policy]["params"])
    likelihood = copy.deepcopy(paper)
    likelihood["prm"] = {"name": "likelihood", "source": "policy_likelihood", "policy": policy}
    score = {s.stage: s.flops for s in estimate(as_prm)}["score"]
    assert {s.stage: s.flops for s in estimate(likelihood)}["score"] == pytest.approx(score)
    assert score != pytest.approx({s.stage: s.flops for s in estimate(paper)}["score"])  # the size matters


def test_host_memory_counts_every_rank_of_the_node_and_fits_each_job(paper):
    """Rank 0 holds the model (at load and at the gathered save); every rank, rank 0 included, its process and its
    copy of the encoded training data; an offloaded job also the shards. Every job fits what it asks even if
    `offload: auto` offloads."""
    from infscale.estimate import training_jobs
    from infscale.training import memory

    jobs = {j.name: j for j in training_jobs(paper)}
    prm = jobs["llemma-34b-rm"]
    rows, tokens = TRAIN_DATA["math-shepherd"]
    per_rank = memory.RANK_PROCESS_GIB * memory.GIB + memory.DATA_HOST_BYTES_PER_TOKEN * rows * tokens
    total = 33_214_316_544 + 2 * 32_016 * memory.shape(33_214_316_544)[0]  # with the (untied) embeddings
    assert prm.plan.host(offload=False) == pytest.approx(4 * total + 8 * per_rank)
    assert prm.plan.host(offload=True) == pytest.approx(prm.plan.host(offload=False) + 16 * total)
    for j in jobs.values():
        assert j.host_ask is not None and j.plan.host(offload=True) < j.host_ask, j.name


def test_fsdp_gradient_sync_past_compute_counts_in_the_34b_jobs(paper):
    """Every micro-step all-gathers the bf16 parameters twice and reduce-scatters the bf16 gradients: the 34B PRM
    moves ~177 GB a GPU a micro-step, ~0.5 s on NVLink. At micro-batch 1 (~0.2 s of compute) its wall time is about
    twice its compute (what the collectives take past compute counts, held but idle); the paper config packs two
    examples a micro-step, half the syncs, and hides most of it."""
    from infscale.estimate import Hardware, training_jobs
    from infscale.training import memory

    hw = Hardware()
    total = 33_214_316_544 + 2 * 32_016 * memory.shape(33_214_316_544)[0]
    per_micro = 3 * total * 2 * 7 / 8 / (hw.nvlink_gbps * 1e9)
    assert 170e9 < 3 * total * 2 * 7 / 8 < 185e9 and per_micro == pytest.approx(0.5, abs=0.02)
    unpacked = copy.deepcopy(paper)
    unpacked["prm"]["train"].update(micro_batch_size=1, packing=False)
    for config, micro in ((unpacked, 1), (paper, 2)):
        prm = {j.name: j for j in training_jobs(config, hw)}["llemma-34b-rm"]
        micro_steps = 2 * 445_000 / 128 * 128 / (micro * 8)  # two epochs, 128 / (micro x 8 GPUs) a step
        compute_s = prm.hours["compute"] * 3600
        assert prm.hours["sync"] * 3600 == pytest.approx(micro_steps * max(0, per_micro - compute_s / micro_steps),
                                                         rel=0.01)
        ratio = (prm.hours["compute"] + prm.hours["sync"]) / prm.hours["compute"]
        assert (1.8 < ratio < 3) if micro == 1 else (ratio < 1.1)
    fp32 = {j.name: j for j in training_jobs(paper, hw)}["llemma-7b"]  # fp32 compute hides its collectives
    assert fp32.hours["sync"] == 0


def test_tf32_is_off_by_default_and_the_estimate_shows_both(paper, tmp_path, capsys):
    from infscale.estimate import H100_FP32_TFLOPS, H100_TF32_TFLOPS, Hardware, main, training_job, with_tf32
    from infscale.training.sft import tf32_flag, training_arguments

    assert tf32_flag({}, cuda=True) is False  # pinned off on a GPU: Table 2's FP32
    assert tf32_flag({"tf32": True}, cuda=True) is True and tf32_flag({"tf32": True}, cuda=False) is None
    assert training_arguments(str(tmp_path), {"steps": 1, "batch_size": 2, "lr": 1e-3, "tf32": True}, 0, 1).tf32 \
        is None  # CPU: no TF32, no error
    fp32 = {"epochs": 1, "batch_size": 128, "dtype": "fp32"}
    hours = [training_job("train_policy", "m", 10**9, t, "metamath", 8, Hardware()).hours["compute"]
             for t in (fp32, {**fp32, "tf32": True})]
    assert hours[0] == pytest.approx(hours[1] * H100_TF32_TFLOPS / H100_FP32_TFLOPS)
    tf32 = with_tf32(paper)
    assert tf32["models"]["llemma-7b"]["train"]["tf32"] and not tf32["models"]["llemma-34b"]["train"]["tf32"]
    assert paper["models"]["llemma-7b"]["train"]["tf32"] is False  # the schema's default
    main([str(ROOT / "config" / "paper.yaml")])
    out = capsys.readouterr().out
    assert "| as configured |" in out and "| fp32 jobs with train.tf32 |" in out
