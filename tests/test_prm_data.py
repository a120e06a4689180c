"""Math-Shepherd labelling logic, driven by a scripted engine so every rollout's outcome is known."""
from infscale.engines import Completion, Generation, SamplingParams
from infscale.prm import parse_math_shepherd_labels
from infscale.prm_data import label_with_rollouts

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
