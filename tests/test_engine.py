"""Engine contract: the same tests any engine (transformers now, vLLM later) must pass."""
import pytest

from infscale.engines import SamplingParams, TransformersEngine, truncate_at_stop
from infscale.stepformat import STEP_TAG


@pytest.fixture(scope="module")
def engine(tiny_policy_dir):
    return TransformersEngine(str(tiny_policy_dir), batch_size=8)


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
    texts = lambda gs: [x.text for g in gs for x in g.completions]
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_greedy_is_deterministic_and_batch_independent(engine):
    single = engine.generate(["Compute 12 + 3.\n"], SamplingParams(n=1, temperature=0, max_new_tokens=12))
    batched = engine.generate(["Compute 12 + 3.\n", "Compute 1 + 1 + 1 + 1.\n"], SamplingParams(n=1, temperature=0, max_new_tokens=12))
    assert single[0].completions[0].text == batched[0].completions[0].text


def test_stop_string_ends_completion_and_is_kept(engine):
    # An untrained model emits the step tag rarely; sample many so some stop at it.
    gens = engine.generate(["Step 1:"] * 4, SamplingParams(n=16, max_new_tokens=40, stop=(STEP_TAG,), seed=3))
    stopped = [c for g in gens for c in g.completions if STEP_TAG in c.text]
    for c in stopped:
        assert c.text.endswith(STEP_TAG) and c.text.count(STEP_TAG) == 1
        assert c.finish_reason == "stop"
        assert 1 <= c.tokens <= 40
    assert stopped, "no sample reached the step tag"


def test_token_counts_match_the_generated_ids(engine, monkeypatch):
    """Counts are of generated ids up to the end or stop token: padding after it is not counted."""
    seen = []
    original = engine._completion
    monkeypatch.setattr(engine, "_completion", lambda row, params: seen.append(row) or original(row, params))
    gens = engine.generate(["Step 1:"] * 3, SamplingParams(n=8, max_new_tokens=30, stop=(STEP_TAG,), seed=5))
    pad, eos = engine.tokenizer.pad_token_id, engine.tokenizer.eos_token_id
    for row, c in zip(seen, [c for g in gens for c in g.completions]):
        real = row[: row.index(eos) + 1] if eos in row else [t for t in row if t != pad]
        assert c.tokens == len(real)
        assert pad not in real  # the pad id is never generated


def test_empty_prompt_generates(engine):
    gens = engine.generate([""], SamplingParams(n=2, max_new_tokens=5, seed=0))
    assert len(gens[0].completions) == 2 and gens[0].prompt_tokens == 1


def test_prompt_longer_than_context_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="exceeds the model's context"):
        engine.generate(["1 " * 200], SamplingParams(n=1, max_new_tokens=5))


@pytest.mark.parametrize("bad", [dict(n=0), dict(n=2.5), dict(temperature=-1), dict(top_p=0), dict(max_new_tokens=0)])
def test_bad_sampling_params(bad):
    with pytest.raises(ValueError):
        SamplingParams(**bad)


def test_truncate_at_stop_picks_earliest():
    assert truncate_at_stop("a ки b ки", ["ки"]) == ("a ки", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)
    assert truncate_at_stop("xx END yy STOP", ["STOP", "END"]) == ("xx END", True)
