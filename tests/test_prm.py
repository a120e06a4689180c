import json

import pytest

from infscale.core.stepformat import STEP_TAG, check_step_tag_agreement, close_last_step, parse_math_shepherd_labels
from infscale.search.prm_scoring import ProcessRewardModel, check_pairing, score_records
from infscale.training.prm_data import to_math_shepherd_row
from infscale.training.prm_training import encode_prm_example, load_prm_for_training, prm_targets, train_prm
from infscale.training.tokenizer import ensure_step_tag_token, load_tokenizer

# Rows in the released peiyi9979/Math-Shepherd format: `input` with ки after each step, `label` with +/-.
MATH_SHEPHERD_ROWS = [
    {"input": "Janet has 3 apples and buys 2 more. How many? Step 1: 3 + 2 = 5 ки\nStep 2: The answer is: 5 ки",
     "label": "Janet has 3 apples and buys 2 more. How many? Step 1: 3 + 2 = 5 +\nStep 2: The answer is: 5 +",
     "task": "GSM8K"},
    {"input": "What is 7 - 4? Step 1: 7 - 4 = 2 ки\nStep 2: The answer is: 2 ки",
     "label": "What is 7 - 4? Step 1: 7 - 4 = 2 -\nStep 2: The answer is: 2 -", "task": "GSM8K"},
]


def test_parse_math_shepherd_rows():
    assert parse_math_shepherd_labels(MATH_SHEPHERD_ROWS[0]["input"], MATH_SHEPHERD_ROWS[0]["label"]) == [1.0, 1.0]
    assert parse_math_shepherd_labels(MATH_SHEPHERD_ROWS[1]["input"], MATH_SHEPHERD_ROWS[1]["label"]) == [0.0, 0.0]


@pytest.mark.parametrize("label, message", [
    ("What is 7 - 4? Step 1: 7 - 4 = 2 ?\nStep 2: The answer is: 2 -", "expected '\\+' or '-'"),
    ("What is 7 - 4? Step 1: 7 - 5 = 2 -\nStep 2: The answer is: 2 -", "does not match"),
    ("What is 7 - 4? Step 1: 7 - 4 = 2 -\nStep 2: The answer is: 2 - extra", "differs from input"),
])
def test_mismatched_labels_are_clear_errors(label, message):
    with pytest.raises(ValueError, match=message):
        parse_math_shepherd_labels(MATH_SHEPHERD_ROWS[1]["input"], label, where="file.jsonl:2: ")


def test_our_rows_round_trip_the_released_format():
    steps = ["Step 1: 3 + 2 = 5 ки", "\nThe answer is: 5 ки"]
    row = to_math_shepherd_row("Compute 3 + 2.", steps, [0.25, 0.0])
    assert parse_math_shepherd_labels(row["input"], row["label"]) == [1.0, 0.0]
    assert prm_targets(row, "soft") == [0.25, 0.0]
    assert prm_targets(row, "hard") == [1.0, 0.0]
    assert prm_targets(MATH_SHEPHERD_ROWS[0], "soft") == [1.0, 1.0]  # released rows have no soft labels


def test_labels_sit_exactly_on_step_tag_tokens(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    tag_id = ensure_step_tag_token(tok)
    row = to_math_shepherd_row("Compute 3 + 2 - 1.", ["Step 1: 3 + 2 = 5 ки", "\nStep 2: 5 - 1 = 4 ки",
                                                    "\nThe answer is: 4 ки"], [1.0, 0.0, 1.0])
    ex = encode_prm_example(tok, row["input"], prm_targets(row), 256)
    tagged = [(t, y) for t, y in zip(ex["input_ids"], ex["labels"]) if y != -100.0]
    assert [t for t, _ in tagged] == [tag_id] * 3
    assert [y for _, y in tagged] == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="step-tag tokens but 2 labels"):
        encode_prm_example(tok, row["input"], [1.0, 0.0], 256)


def test_step_tag_agreement_is_enforced(tmp_path):
    check_step_tag_agreement(STEP_TAG, STEP_TAG)
    with pytest.raises(ValueError, match="step tag mismatch"):
        check_step_tag_agreement("\n\n", STEP_TAG)
    policy, prm = tmp_path / "policy", tmp_path / "prm"
    for d, tag in ((policy, "<step>"), (prm, STEP_TAG)):
        d.mkdir()
        (d / "training_summary.json").write_text(json.dumps({"step_tag": tag}))
    with pytest.raises(ValueError, match="'<step>'.*'ки'"):
        check_pairing(policy, prm)


def test_train_on_released_format_and_score(tmp_path, tokenizer_dir, tiny_policy_dir, caplog):
    """The PRM trainer takes Math-Shepherd rows as released; the trained PRM scores one value per step tag."""
    tok = load_tokenizer(tokenizer_dir)
    rows = MATH_SHEPHERD_ROWS * 8
    model = load_prm_for_training(str(tiny_policy_dir), None, tok, seed=0)
    with caplog.at_level("INFO", logger="infscale.core.progress"):
        summary = train_prm(rows, tok, model, {"steps": 30, "batch_size": 8, "lr": 1e-2}, tmp_path / "prm", seed=0)
    assert "training: 30/30 steps (100%)" in caplog.text  # progress in the job's log
    first, last = summary["log"][0]["loss"], summary["log"][-1]["loss"]
    assert last < first  # it learns: the two rows are separable
    prm = ProcessRewardModel(str(tmp_path / "prm"), batch_size=4)
    scores, tokens = prm.score(["Compute 3 + 2.", "Compute 3 + 2."],
                               ["Step 1: 3 + 2 = 5 ки\nThe answer is: 5 ки", "Step 1: 3 + 2 = 5 ки\nStep 2:"])
    assert [len(s) for s in scores] == [2, 2]  # the untagged trailing "Step 2:" is scored too
    assert all(0.0 <= x <= 1.0 for s in scores for x in s)
    assert tokens[0] > tokens[1] > 0
    assert close_last_step("Step 1: a ки\nThe answer is: 5") == "Step 1: a ки\nThe answer is: 5 ки"
    assert close_last_step("Step 1: a ки\n") == "Step 1: a ки\n"
    records = [{"question": "Compute 3 + 2.", "candidates": [{"text": "Step 1: 3 + 2 = 5 ки"}, {"text": "no tag"}]}]
    score_records(prm, records)
    assert [len(c["step_scores"]) for c in records[0]["candidates"]] == [1, 1]
    assert all(c["prm_tokens"] > 0 for c in records[0]["candidates"])


def test_prm_from_scratch_needs_arch(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    model = load_prm_for_training(None, {"hidden_size": 16, "num_layers": 1, "num_heads": 2}, tok, seed=0)
    assert model.config.num_labels == 1


def test_released_causal_lm_prm_scores_plus_against_minus_at_each_tag(tiny_policy_dir):
    """A causal-LM checkpoint is read the Math-Shepherd way: P(+) / (P(+) + P(-)) from the logits at each tag."""
    import torch

    from infscale.core.stepformat import format_prompt
    from infscale.search.prm_scoring import ProcessRewardModel, is_causal_lm_prm

    assert is_causal_lm_prm(tiny_policy_dir)
    prm = ProcessRewardModel(str(tiny_policy_dir), batch_size=2)
    assert prm.reading == "plus_minus"
    question, solution = "Compute 5 + 3.", "Step 1: 5 + 3 = 8 ки\nThe answer is: 8"  # last step untagged
    scores, tokens = prm.score([question], [solution])
    assert len(scores[0]) == 2 and all(0 < x < 1 for x in scores[0])
    ids = prm.tokenizer.encode(format_prompt(question) + solution + " ки", add_special_tokens=False)
    with torch.no_grad():
        logits = prm.model(input_ids=torch.tensor([ids])).logits[0]
    at_tags = [i for i, t in enumerate(ids) if t == prm.tokenizer.convert_tokens_to_ids("ки")]
    expected = torch.softmax(logits[at_tags][:, prm.label_ids], dim=-1)[:, 0].tolist()
    assert scores[0] == pytest.approx(expected, abs=1e-5) and tokens == [len(ids)]
