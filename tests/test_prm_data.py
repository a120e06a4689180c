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
