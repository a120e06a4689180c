"""The cached decoder (search/kv_decode.py) behind TransformersEngine: the same greedy outputs as `model.generate`,
HF's sampling distribution, and tree search that reads only the new tokens of each depth."""
import math
from collections import Counter

import pytest
from scripted import LengthPRM

from infscale.core.stepformat import STEP_TAG
from infscale.search.engine_base import SamplingParams
from infscale.search.engines import TransformersEngine
from infscale.search.kv_decode import PrefixCache
from infscale.search.rebase import run_rebase

ROWS = [{"id": "a", "question": "Compute 12 + 3 + 4 + 5 + 6 + 7.", "answer": "37"},
        {"id": "b", "question": "Compute 40 - 2 + 5 - 1 + 8 - 3.", "answer": "47"}]
PARAMS = {"max_step_tokens": 12, "max_solution_tokens": 60, "max_depth": 5, "balance_temperature": 0.2}


def outputs(gens):
    return [(c.text, c.tokens, c.finish_reason) for g in gens for c in g.completions]


@pytest.fixture(scope="module")
def engines(engine_policy_dir):
    generate = TransformersEngine(str(engine_policy_dir), batch_size=8, decoder="generate")
    cached = TransformersEngine(str(engine_policy_dir), batch_size=8)
    assert generate.decoder is None and cached.decoder is not None
    yield generate, cached
    generate.close()
    cached.close()


def test_greedy_equals_model_generate(engines):
    """Same texts, token counts and finish reasons as HF's generate: end-of-text, stop string and length rows,
    prompts of different lengths in one batch (left padding), rows leaving the batch at different steps."""
    generate, cached = engines
    prompts = ["Compute 12 + 3.\n", "Compute 40 - 2 + 5 - 7 + 1.\n", "Step 1:", "", "Compute 1 + 1.\nStep 1: 1"]
    for params in (SamplingParams(n=1, temperature=0, max_new_tokens=24, stop=(STEP_TAG,)),
                   SamplingParams(n=1, temperature=0, max_new_tokens=24)):
        expected = outputs(generate.generate(prompts, params))
        assert outputs(cached.generate(prompts, params)) == expected
        assert {r for _, _, r in expected} == {"stop", "length"} or params.stop


def test_sampling_follows_the_softmax_with_top_p(engines):
    """Draws from `_sample` on fixed logits match softmax(logits / T) restricted to the top-p set, computed here
    independently (the smallest set of most likely tokens whose mass reaches top_p)."""
    import torch

    _, cached = engines
    decoder = cached.decoder
    vocab = len(cached.tokenizer)
    torch.manual_seed(0)
    logits = torch.randn(vocab) * 2
    temperature, top_p, draws = 0.8, 0.7, 40000
    torch.manual_seed(1)
    counts = Counter(decoder._sample(logits.repeat(draws, 1), temperature, top_p).tolist())
    pad = cached.tokenizer.pad_token_id
    weights = {i: math.exp(float(logits[i]) / temperature) for i in range(vocab) if i != pad}
    total = sum(weights.values())
    kept, mass = [], 0.0
    for i in sorted(weights, key=weights.get, reverse=True):
        if mass >= top_p:
            break
        kept.append(i)
        mass += weights[i] / total
    assert set(counts) <= set(kept)
    for i in kept:
        p = weights[i] / mass / total
        assert abs(counts[i] / draws - p) < 4 * math.sqrt(p * (1 - p) / draws) + 1e-3, i


def test_same_seed_same_samples_and_finished_rows_leave_the_batch(engines):
    _, cached = engines
    params = SamplingParams(n=12, max_new_tokens=20, stop=(STEP_TAG,), seed=4)
    prompts = ["Compute 12 + 3.\n", "Step 1:"]
    before = dict(cached.stats)
    first = outputs(cached.generate(prompts, params))
    read = cached.stats["decode_tokens"] - before["decode_tokens"]
    assert first == outputs(cached.generate(prompts, params))
    assert first != outputs(cached.generate(prompts, SamplingParams(**{**params.__dict__, "seed": 5})))
    # Rows stop at different steps: the decoder reads fewer tokens than rows x the longest sample.
    assert len({t for _, t, _ in first}) > 1
    assert read < len(first) * max(t for _, t, _ in first)


def test_prefix_cache_keeps_the_longest_shared_prefix_within_its_size():
    import torch

    def kv(n):
        return torch.arange(4.0 * n).reshape(1, 2, 1, n, 2)  # 4 floats a token

    cache = PrefixCache(max_bytes=12 * 4)  # room for 12 floats
    cache.put((1, 2), kv(2))
    cache.put((3,), kv(1))
    assert cache.longest_prefix([1, 2, 3])[0] == 2
    assert cache.longest_prefix([1, 5])[0] == 1  # shares (1,) with the entry (1, 2)
    assert cache.longest_prefix([7])[0] == 0 and cache.longest_prefix([2])[0] == 0
    length, entry = cache.longest_prefix([3])  # (3,) is now the most recently used
    assert length == 1 and torch.equal(entry, kv(1))
    cache.put((5, 6), kv(2))  # 8 more floats: the least recently used, (1, 2), goes
    assert cache.longest_prefix([1, 2, 3])[0] == 0
    assert cache.longest_prefix([3, 4])[0] == 1 and cache.longest_prefix([5, 6, 7])[0] == 2
    assert cache.bytes == 12 * 4


def test_tree_search_reads_only_new_tokens_per_depth(tagging_policy_dir):
    """REBASE through the cached decoder: with the prefix cache a depth reads, per expanded node, at most the
    tokens its prompt does not share with its parent's prompt (the parent's step, as the tokenizer splits the
    re-sent text), however long the path; without it, every prompt and path token again. The trees are the same."""
    depths, trees = {}, {}
    for label, mib in (("cached", 64), ("re-read", 0)):
        engine = TransformersEngine(str(tagging_policy_dir), batch_size=16, prefix_cache_mib=mib)
        calls, generate = [], engine.generate

        def counted(prompts, params, generate=generate, engine=engine, calls=calls):
            before = dict(engine.stats)
            gens = generate(prompts, params)
            calls.append({"prompts": sorted(set(prompts)), **{k: engine.stats[k] - before[k] for k in before}})
            return gens

        engine.generate = counted
        trees[label] = run_rebase(engine, LengthPRM(), ROWS, "toy", 6, PARAMS, seed=3)
        depths[label] = calls
        tok = engine.tokenizer
        engine.close()
    cached, reread = depths["cached"], depths["re-read"]
    assert len(cached) >= 4  # depth 1 and at least three expansions of earlier steps
    assert trees["cached"] == trees["re-read"]
    assert cached[0]["prefill_tokens"] == cached[0]["prompt_tokens"]  # depth 1: the questions, read once each

    def ids(text):
        return tok.encode(text, add_special_tokens=False)

    def step_tokens(prompt, earlier):
        """Tokens of `prompt` after the longest token prefix it shares with its parent's prompt."""
        parent = max((p for p in earlier if prompt.startswith(p)), key=len)
        a, b = ids(prompt), ids(parent)
        shared = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return len(a) - shared

    path_per_node, read_per_node = [], []
    for depth in range(1, len(cached)):
        c, r = cached[depth], reread[depth]
        assert c["prompt_tokens"] == r["prompt_tokens"] == r["prefill_tokens"]  # the paths, all re-read
        bound = sum(step_tokens(p, cached[depth - 1]["prompts"]) for p in c["prompts"])
        assert len(c["prompts"]) <= c["prefill_tokens"] <= bound
        assert c["cached_tokens"] == c["prompt_tokens"] - c["prefill_tokens"]
        path_per_node.append(c["prompt_tokens"] / len(c["prompts"]))
        read_per_node.append(c["prefill_tokens"] / len(c["prompts"]))
    # The paths grow with depth; what the cached decoder reads of them stays at about a step.
    assert path_per_node[-1] > path_per_node[0] + 10
    assert max(read_per_node) < path_per_node[-1] / 2
