"""Math-Shepherd labelling logic, driven by a scripted engine so every rollout's outcome is known."""
from infscale.core.stepformat import parse_math_shepherd_labels
from infscale.search.engine_base import Completion, Generation, SamplingParams
from infscale.training.prm_data import label_with_rollouts

Q = "Compute 10 + 2 + 3."
PROMPT = Q + "\n"
GOOD = "Step 1: 10 + 2 = 12 ки\nStep 2: 12 + 3 = 15 ки\nThe answer is: 15 ки"
BAD = "Step 1: 10 + 2 = 13 ки\nStep 2: 13 + 3 = 16 ки\nThe answer is: 16 ки"


class ScriptedEngine:
    """Solutions for the question; rollouts from a prefix follow the table (3 of 4 right after a good step 1)."""

    context_length = 512

    def __init__(self):
        self.calls = []

    def generate(self, prompts, params: SamplingParams):
        self.calls.append((list(prompts), params))
        out = []
        for p in prompts:
            if p == PROMPT:
                texts = [GOOD, BAD, "Step 1: 10 + 2 = 12 ки\nStep 2:"][: params.n]  # the last is unfinished
            elif p.endswith("= 12 ки"):
                texts = ["\nStep 2: 12 + 3 = 15 ки\nThe answer is: 15 ки"] * 3 + ["\nThe answer is: 11 ки"]
            elif p.endswith("= 15 ки"):
                texts = ["\nThe answer is: 15 ки"] * 4
            else:  # after a wrong step nothing recovers
                texts = ["\nThe answer is: 16 ки"] * 4
            out.append(Generation(prompt_tokens=len(p), completions=[Completion(t, 5, "stop") for t in texts[: params.n]]))
        return out

    def close(self):
        pass


def test_hard_and_soft_labels_from_rollouts():
    engine = ScriptedEngine()
    rows = label_with_rollouts(engine, [{"id": "q1", "question": Q, "answer": "15"}], "toy", samples=3, rollouts=4,
                               max_new_tokens=64, temperature=1.0, seed=0)
    assert len(rows) == 2  # the unfinished third solution has no final tag to label
    good, bad = rows
    assert good["soft"] == [0.75, 1.0, 1.0]  # step 1: 3 of 4 rollouts reach 15; last step: own answer right
    assert parse_math_shepherd_labels(good["input"], good["label"]) == [1.0, 1.0, 1.0]
    assert bad["soft"] == [0.0, 0.0, 0.0]
    assert parse_math_shepherd_labels(bad["input"], bad["label"]) == [0.0, 0.0, 0.0]
    assert good["input"] == PROMPT + GOOD
    # Rollouts of all prefixes are one batched call, with a seed other than the solutions'.
    assert len(engine.calls) == 2
    (_, p1), (prefixes, p2) = engine.calls
    assert len(prefixes) == 4 and p2.n == 4 and p1.seed != p2.seed


def test_sampling_settings_reach_the_engine():
    # The labels are reproducible from the config: solutions are sampled with `seed`, rollouts with `seed + 1`,
    # both at the configured temperature and token limit.
    engine = ScriptedEngine()
    label_with_rollouts(engine, [{"id": "q1", "question": Q, "answer": "15"}], "toy", samples=2, rollouts=3,
                        max_new_tokens=48, temperature=0.7, seed=11)
    (prompts, p1), (prefixes, p2) = engine.calls
    assert prompts == [PROMPT]
    assert (p1.n, p1.temperature, p1.max_new_tokens, p1.seed) == (2, 0.7, 48, 11)
    assert (p2.n, p2.temperature, p2.max_new_tokens, p2.seed) == (3, 0.7, 48, 12)
    # one rollout prompt per proper step prefix of each finished solution, exactly as the policy wrote it
    good1, good2 = GOOD.split("ки")[:2]
    bad1, bad2 = BAD.split("ки")[:2]
    assert prefixes == [PROMPT + good1 + "ки", PROMPT + good1 + "ки" + good2 + "ки",
                        PROMPT + bad1 + "ки", PROMPT + bad1 + "ки" + bad2 + "ки"]


class FixedSolutions(ScriptedEngine):
    """Solutions given by the test; rollouts as in ScriptedEngine."""

    def __init__(self, solutions):
        super().__init__()
        self.solutions = solutions

    def generate(self, prompts, params):
        if prompts == [PROMPT] and not self.calls:
            self.calls.append((list(prompts), params))
            return [Generation(prompt_tokens=len(PROMPT),
                               completions=[Completion(t, 5, "stop") for t in self.solutions])]
        return super().generate(prompts, params)


def test_unfinished_solutions_are_skipped_wherever_they_come():
    unfinished = "Step 1: 10 + 2 = 12 ки\nStep 2: 12 + 3 = 15 ки\nThe answer"  # cut by the token limit
    engine = FixedSolutions([unfinished, GOOD, unfinished, BAD])
    rows = label_with_rollouts(engine, [{"id": "q1", "question": Q, "answer": "15"}], "toy", samples=4,
                               rollouts=4, max_new_tokens=64, temperature=1.0, seed=0)
    assert [r["input"] for r in rows] == [PROMPT + GOOD, PROMPT + BAD]
    assert [r["soft"] for r in rows] == [[0.75, 1.0, 1.0], [0.0, 0.0, 0.0]]
    assert [r["id"] for r in rows] == ["q1", "q1"]


def test_one_step_solutions_need_no_rollouts_and_rows_without_id():
    engine = FixedSolutions(["The answer is: 15 ки", "The answer is: 14 ки"])
    rows = label_with_rollouts(engine, [{"question": Q, "answer": "15"}], "toy", samples=2, rollouts=4,
                               max_new_tokens=64, temperature=1.0, seed=0)
    assert len(engine.calls) == 1  # no rollout call with an empty batch
    assert [r["soft"] for r in rows] == [[1.0], [0.0]]
    assert [r["label"] for r in rows] == [PROMPT + "The answer is: 15 +", PROMPT + "The answer is: 14 -"]
    assert [r["id"] for r in rows] == [None, None]


# Binary search (OmegaPRM): a 5-step wrong solution whose first wrong step is step 3 (value 33 instead of 32).
Q5 = "Compute 30 + 1 + 1 + 1 + 1."
WRONG5 = ("Step 1: 30 + 1 = 31 ки\nStep 2: 31 + 1 = 32 ки\nStep 3: 32 + 1 = 34 ки\nStep 4: 34 + 1 = 35 ки\n"
          "Step 5: 35 + 1 = 36 ки\nThe answer is: 36 ки")
RIGHT5 = ("Step 1: 30 + 1 = 31 ки\nStep 2: 31 + 1 = 32 ки\nStep 3: 32 + 1 = 33 ки\nStep 4: 33 + 1 = 34 ки\n"
          "The answer is: 34 ки")


class PrefixEngine:
    """Solutions as scripted; a rollout reaches 34 (the answer) exactly when its prefix has no wrong step."""

    def __init__(self, solutions):
        self.solutions, self.calls = solutions, []

    def generate(self, prompts, params):
        from infscale.core.stepformat import split_steps
        from infscale.core.toytask import first_wrong_step

        self.calls.append(list(prompts))
        out = []
        for p in prompts:
            question, prefix = p.split("\n", 1)
            if not prefix:
                texts = self.solutions[: params.n]
            else:
                ok = first_wrong_step(question, [s for s in split_steps(prefix) if s.strip()]) == len(
                    [s for s in split_steps(prefix) if s.strip()])  # no wrong step yet, only unfinished
                texts = ["\nThe answer is: 34 ки" if ok else "\nThe answer is: 99 ки"] * params.n
            out.append(Generation(prompt_tokens=len(p), completions=[Completion(t, 5, "stop") for t in texts]))
        return out

    def close(self):
        pass


def test_binary_search_labels_wrong_solutions_with_log_many_rollout_calls():
    from infscale.training.prm_data import label_solutions, sample_solutions

    engine = PrefixEngine([WRONG5, RIGHT5])
    items = sample_solutions(engine, [{"id": "q", "question": Q5, "answer": "34"}], 2, 64, 1.0, 0, source="m")
    assert [it["source"] for it in items] == ["m", "m"]
    linear = label_solutions(engine, items, "toy", 2, 64, 1.0, 1, search="linear")
    n_linear = len(engine.calls[-1])
    binary = label_solutions(engine, items, "toy", 2, 64, 1.0, 1, search="binary")
    n_binary = sum(len(c) for c in engine.calls[2:])
    # Same hard labels: steps 1-2 right, from step 3 on wrong; the right solution is all `+` with no rollout.
    for rows in (linear, binary):
        assert parse_math_shepherd_labels(rows[0]["input"], rows[0]["label"]) == [1, 1, 0, 0, 0, 0]
        assert parse_math_shepherd_labels(rows[1]["input"], rows[1]["label"]) == [1, 1, 1, 1, 1]
        assert rows[0]["source"] == "m"
    assert n_linear == 5 + 4  # every proper prefix of both solutions
    assert n_binary == 2  # prefixes 3 (fails), then 2 (succeeds) of the wrong one; none for the right one
    assert len(engine.calls) == 1 + 1 + 2  # solutions, linear, two binary rounds
    assert binary[0]["soft"][:2] == [1.0, 1.0]  # step 1 untested, inferred right; step 2 measured
    assert binary[0]["soft"][2] == 0.0 and binary[0]["soft"][4] == 0.0  # step 5: inferred from step 3 failing


def test_exact_step_labels_ablation_needs_no_completer():
    from infscale.training.prm_data import label_solutions, sample_solutions

    engine = PrefixEngine([WRONG5])
    items = sample_solutions(engine, [{"id": "q", "question": Q5, "answer": "34"}], 1, 64, 1.0, 0)
    rows = label_solutions(None, items, "toy", 2, 64, 1.0, 1, step_labels="exact")
    assert parse_math_shepherd_labels(rows[0]["input"], rows[0]["label"]) == [1, 1, 0, 0, 0, 0]


def test_label_solutions_rejects_unknown_modes():
    import pytest

    from infscale.training.prm_data import label_solutions

    with pytest.raises(ValueError, match="search"):
        label_solutions(None, [], "toy", 2, 64, 1.0, 0, search="ternary")
    with pytest.raises(ValueError, match="step_labels"):
        label_solutions(None, [], "toy", 2, 64, 1.0, 0, step_labels="oracle")


def test_cut_solutions_are_not_labelled():
    from infscale.training.prm_data import sample_solutions

    class Cut(PrefixEngine):
        def generate(self, prompts, params):
            return [Generation(1, [Completion(RIGHT5, 5, "length")])]

    assert sample_solutions(Cut([]), [{"id": "q", "question": Q5, "answer": "34"}], 1, 64, 1.0, 0) == []


def test_config_names_the_bad_prm_key():
    from pathlib import Path

    import pytest
    import yaml

    from infscale.core.config import ConfigError
    from infscale.core.validation import validate_config

    ci = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "ci.yaml").read_text())
    filled = validate_config(ci)
    # the paper's labels unless the ablation is asked for
    assert filled["prm_ablations"]["prm-ci"]["step_labels"] == "rollouts"
    ci["prm_ablations"]["prm-ci"]["sample_from"] = ["tiny-a", "tiny-z"]
    with pytest.raises(ConfigError, match=r"prm_ablations.prm-ci.sample_from\[1\]: unknown model slug 'tiny-z'"):
        validate_config(ci)
    ci["prm_ablations"]["prm-ci"]["sample_from"] = ["tiny-a"]
    ci["prm_ablations"]["prm-ci"]["search"] = "ternary"
    with pytest.raises(Exception, match="ternary"):
        validate_config(ci)
