"""Byte-level BPE tokenizer trained on the task text, with the step tag as one token.

Digits are split one by one before BPE (a tiny model learns column arithmetic only on single digits). For code
(`newline_token`) a newline is a token of its own, never merged with the indentation after it: a code step ends at
a newline (core/codesteps.py), and a step cut inside a token would leave the next step's prompt tokenised as
training never showed it.
"""
from __future__ import annotations

from pathlib import Path

from infscale.core.stepformat import STEP_TAG

EOS, PAD = "<|endoftext|>", "<|padding|>"


def train_tokenizer(texts: list[str], out_dir: str | Path, vocab_size: int = 512, newline_token: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    newline = [pre_tokenizers.Split("\n", behavior="isolated")] if newline_token else []
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [*newline, pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=EOS)
    # The step tag is an added (not special) token: one id, kept when decoding.
    fast.add_tokens([STEP_TAG])
    fast.padding_side = "left"
    fast.save_pretrained(str(out_dir))
    return fast


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    ensure_step_tag_token(tok)
    return tok


def ensure_step_tag_token(tok, tag: str = STEP_TAG) -> int:
    """Id of the step tag; refuses a tokenizer that splits it into several pieces."""
    ids = tok.encode(tag, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"the tokenizer splits the step tag {tag!r} into {len(ids)} tokens; add it with "
            f"tokenizer.add_tokens([{tag!r}]) and resize the model's embeddings"
        )
    return ids[0]
