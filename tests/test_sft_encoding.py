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
