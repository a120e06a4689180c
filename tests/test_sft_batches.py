"""SFT examples encoded in one batched tokenizer call are the ids of encoding each text on its own."""
from infscale.core.stepformat import format_prompt
from infscale.training.sft import encode_sft_examples
from infscale.training.tokenizer import load_tokenizer


def test_batched_encoding_equals_one_text_at_a_time(tokenizer_dir, toy_rows):
    tok = load_tokenizer(tokenizer_dir)
    rows = toy_rows["train"][:200] + toy_rows["train"][:5]  # repeated rows are encoded alike
    for max_length, prefix in ((256, []), (24, [tok.eos_token_id])):
        got = encode_sft_examples(tok, rows, max_length, prefix)
        assert len(got) == len(rows)
        truncated = 0
        for row, example in zip(rows, got):
            prompt = prefix + tok.encode(format_prompt(row["question"]), add_special_tokens=False)
            completion = tok.encode(row["solution"], add_special_tokens=False) + [tok.eos_token_id]
            assert example["input_ids"] == (prompt + completion)[:max_length]
            assert example["labels"] == ([-100] * len(prompt) + completion)[:max_length]
            truncated += len(prompt + completion) > max_length
        assert truncated > 0 or max_length == 256
    assert encode_sft_examples(tok, [], 16) == []


def test_length_sorted_steps_keep_each_steps_rows():
    from infscale.training.sft import LengthSortedSteps

    lengths = [5, 3, 9, 1, 7, 2, 8, 6, 4, 0, 11]
    order = [4, 0, 9, 2, 7, 1, 10, 3, 8, 5, 6]  # a sampler's order
    got = list(LengthSortedSteps(order, lengths, group=4))
    assert len(got) == len(order)
    for start in range(0, len(order), 4):
        step = got[start : start + 4]
        assert sorted(step) == sorted(order[start : start + 4])  # the same rows in each step
        assert [lengths[i] for i in step] == sorted(lengths[i] for i in step)


def test_micro_batches_in_length_order_train_like_one_batch(tokenizer_dir, toy_rows, tmp_path):
    """Two micro-batches of 8 (rows sorted by length within each step of 16) against one batch of 16: the same
    rows each step, so the same loss at every step (to float rounding) and the same weights to the last bits;
    fewer padded tokens."""
    import torch
    from transformers import Trainer

    from infscale.core.models import build_causal_lm
    from infscale.training.sft import PadCollator, run_training

    tok = load_tokenizer(tokenizer_dir)
    examples = encode_sft_examples(tok, toy_rows["train"][:160], 256, [])
    runs = {}
    for micro in (None, 8):
        padded = []

        class Counting(PadCollator):
            def __call__(self, batch):
                out = super().__call__(batch)
                padded.append(out["input_ids"].numel())
                return out

        model = build_causal_lm({"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tok, 0)
        train = {"steps": 6, "batch_size": 16, "lr": 3e-3, **({"micro_batch_size": micro} if micro else {})}
        summary = run_training(Trainer, model, tok, examples, Counting(tok.pad_token_id), train,
                               tmp_path / f"m{micro}", seed=0)
        runs[micro] = ([h["loss"] for h in summary["log"]], model, sum(padded))
    (one_loss, one_model, one_padded), (micro_loss, micro_model, micro_padded) = runs[None], runs[8]
    assert len(one_loss) == len(micro_loss) == 6
    assert all(abs(a - b) < 1e-5 * abs(a) for a, b in zip(one_loss, micro_loss))
    for a, b in zip(one_model.parameters(), micro_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert micro_padded < one_padded
