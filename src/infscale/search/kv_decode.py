"""Sampling from a Hugging Face GPT-NeoX model with a preallocated key/value cache and a prefix cache.

`model.generate` spends most of its time on a tiny model outside arithmetic: it grows the key/value cache by
concatenation every step (a copy of the whole cache), runs a stack of logits processors and stop-string criteria,
and keeps finished rows in the batch to the end. `CachedDecoder` runs the model's own layers (embedding, rotary
embedding, `GPTNeoXLayer`s, final norm, head: no arithmetic of its own) over one cache allocated once per batch:

  * each distinct prompt of a batch is read once (a prompt sampled n times is one prefill, copied to n rows);
  * a decode step writes one column of the cache in place and attends over the columns filled so far;
  * rows that end (end-of-text, a stop string, the token limit) leave the batch: when a quarter of the rows are
    done, the live rows are copied into a smaller cache;
  * a row that ended at a stop string (a tree-search step) leaves its keys and values in a bounded prefix
    cache (LRU), keyed by its token ids; a later prompt reads only its tokens after the longest prefix it shares
    with a cached sequence (tree search extending that step at the next depth: its last token, or a few more
    where the tokenizer splits the re-sent text differently from the generated ids).

Sampling is HF's for the engine's settings (pad suppressed, temperature, top-p as `TopPLogitsWarper`, softmax;
greedy: argmax), drawn by inverse CDF from the global torch generator the engine seeds per batch: the same
distribution as HF's `torch.multinomial`, not the same draws (nor are they once finished rows leave the batch).
A stop string halts a row at the token that completes it in the generated text (as vLLM; HF's criterion also
matches a stop string that begins in the prompt). `stats` counts tokens: distinct prompt tokens of the batches
(`prompt_tokens`), those the model read (`prefill_tokens`) and those served from the prefix cache
(`cached_tokens`), and generated tokens read back (`decode_tokens`, rows that finished included until they
leave the batch).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence


def supports(model) -> bool:
    """Whether `CachedDecoder` can run `model` (GPT-NeoX causal LMs; others use `model.generate`)."""
    return getattr(model.config, "model_type", None) == "gpt_neox" and hasattr(model, "gpt_neox")


class KVBuffer:
    """The key/value store the attention layers call (`update`, HF's Cache interface): every layer's keys and
    values in one tensor [layers, 2, rows, heads, columns, head size]. A forward over columns [start, end)
    writes its keys and values there (only where `write` is True, when set) and attends over [0, end)."""

    def __init__(self, kv):
        self.kv, self.start, self.end, self.write = kv, 0, 0, None

    def update(self, key, value, layer_idx, *args, **kwargs):
        import torch

        keys, values = self.kv[layer_idx, 0], self.kv[layer_idx, 1]
        s, e = self.start, self.end
        if self.write is None:
            keys[:, :, s:e] = key
            values[:, :, s:e] = value
        else:
            keys[:, :, s:e] = torch.where(self.write, key, keys[:, :, s:e])
            values[:, :, s:e] = torch.where(self.write, value, values[:, :, s:e])
        return keys[:, :, :e], values[:, :, :e]


class PrefixCache:
    """Keys and values of token sequences ([layers, 2, heads, length, head size] each), least recently used
    first out once they hold more than `max_bytes`. A lookup finds the cached sequence that shares the longest
    prefix with the ids asked for (every prefix of every entry is indexed by a rolling hash), so a prompt whose
    tokenisation differs from the cached ids after some point still reuses the part before it."""

    _MOD = (1 << 61) - 1

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self.entries: OrderedDict[tuple, object] = OrderedDict()
        self.index: dict[int, tuple] = {}  # hash of a prefix -> an entry that starts with it

    @classmethod
    def _hashes(cls, ids: Sequence[int]) -> list[int]:
        out, h = [], 0
        for t in ids:
            h = (h * 1000003 + int(t) + 1) % cls._MOD
            out.append(h)
        return out

    def put(self, ids: tuple, kv) -> None:
        size = kv.numel() * kv.element_size()
        if ids in self.entries or size > self.max_bytes:
            return
        self.entries[ids] = kv
        self.bytes += size
        for h in self._hashes(ids):
            self.index[h] = ids
        while self.bytes > self.max_bytes:
            old, old_kv = self.entries.popitem(last=False)
            self.bytes -= old_kv.numel() * old_kv.element_size()
            for h in self._hashes(old):
                if self.index.get(h) == old:
                    del self.index[h]

    def longest_prefix(self, ids: Sequence[int]):
        """(length, kv) of the longest prefix of `ids` that a cached sequence starts with; (0, None) if none.
        The kv is the whole entry's: its first `length` columns belong to that prefix."""
        hashes = self._hashes(ids)
        for length in range(len(ids), 0, -1):
            key = self.index.get(hashes[length - 1])
            if key is not None and key in self.entries and tuple(key[:length]) == tuple(ids[:length]):
                self.entries.move_to_end(key)
                return length, self.entries[key]
        return 0, None

    def clear(self) -> None:
        self.entries.clear()
        self.index.clear()
        self.bytes = 0


class CachedDecoder:
    """Batched sampling over a GPT-NeoX model (see the module docstring)."""

    def __init__(self, model, tokenizer, device, prefix_cache_bytes: int = 256 << 20, compact_share: float = 0.25):

        self.model, self.tok, self.device = model, tokenizer, device
        self.net = model.gpt_neox
        cfg = model.config
        self.layers, self.heads = cfg.num_hidden_layers, cfg.num_attention_heads
        self.head_size = cfg.hidden_size // cfg.num_attention_heads
        self.dtype = next(model.parameters()).dtype
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self.compact_share = compact_share
        self.stats = {"prompt_tokens": 0, "prefill_tokens": 0, "cached_tokens": 0, "decode_tokens": 0}
        self._vocab = len(tokenizer)
        self._may_end: dict[tuple, list[bool]] = {}  # stop strings -> per token: may it complete one

    # ------------------------------------------------------------------ model
    def _forward(self, ids, positions, mask, cache):
        """Logits at the last column of `ids` [rows, columns]; `mask` [rows, 1, columns, cache.end] additive."""
        h = self.net.embed_in(ids)
        position_embeddings = self.net.rotary_emb(h, position_ids=positions)
        for layer in self.net.layers:
            h = layer(h, attention_mask=mask, position_ids=positions, layer_past=cache,
                      position_embeddings=position_embeddings)
        return self.model.get_output_embeddings()(self.net.final_layer_norm(h[:, -1])).float()

    def _new_cache(self, rows: int, columns: int, zeros: bool = True):
        """A cache of `rows` x `columns`; `zeros=False` leaves it unset (every column is written before it is
        read: attention reads columns up to the one just written, and masked columns must hold numbers)."""
        import torch

        new = torch.zeros if zeros else torch.empty
        return new(self.layers, 2, rows, self.heads, columns, self.head_size, dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------ sampling
    def _sample(self, logits, temperature: float, top_p: float):
        import torch

        pad, eos = self.tok.pad_token_id, self.tok.eos_token_id
        if pad is not None and pad != eos:
            logits[:, pad] = -float("inf")  # padding is never a generated token
        if temperature == 0:
            return logits.argmax(-1)
        logits = logits / temperature
        if top_p < 1:  # transformers' TopPLogitsWarper
            sorted_logits, order = torch.sort(logits, descending=False)
            remove = sorted_logits.softmax(-1).cumsum(-1) <= 1 - top_p
            remove[:, -1:] = False
            logits = logits.masked_fill(remove.scatter(1, order, remove), -float("inf"))
        # Inverse-CDF sampling: one uniform a row against the cumulative probabilities (the first token whose
        # cumulative share exceeds it, so a token of probability 0 is never drawn); torch.multinomial draws from the
        # same distribution ~10x slower on CPU.
        cdf = logits.softmax(-1).cumsum(-1)
        u = torch.rand(cdf.shape[0], 1, device=cdf.device) * cdf[:, -1:]
        return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)

    def _stop_table(self, stop: tuple[str, ...]) -> list[bool]:
        """Per token id: whether its text holds a stop string's last character (or a partial character); a
        row's text is checked for the stop strings only after such a token."""
        if stop not in self._may_end:
            last = {s[-1] for s in stop if s}
            texts = [self.tok.decode([i]) for i in range(self._vocab)]
            self._may_end[stop] = [any(c in t for c in last) or "\ufffd" in t for t in texts]
        return self._may_end[stop]

    # ------------------------------------------------------------------ generation
    def generate(self, prompt_ids: list[list[int]], max_new_tokens: int, temperature: float, top_p: float,
                 stop: tuple[str, ...]) -> list[list[int]]:
        """Generated ids per prompt row: up to and including the end-of-text or stop-completing token, else
        `max_new_tokens` ids. The caller seeds torch's generator."""
        import torch

        tok, eos = self.tok, self.tok.eos_token_id
        rows = len(prompt_ids)
        unique: dict[tuple, int] = {}
        source = [unique.setdefault(tuple(p), len(unique)) for p in prompt_ids]
        prompts = list(unique)
        width = max(map(len, prompts))
        columns = width + max_new_tokens
        logits, prompt_kv = self._prefill(prompts, width)
        index = torch.tensor(source, device=self.device)
        kv = self._new_cache(rows, columns, zeros=False)
        kv[:, :, :, :, :width] = prompt_kv.index_select(2, index)  # left padding included: the prefill's zeros
        logits = logits.index_select(0, index)
        del prompt_kv
        lengths = torch.tensor([len(p) for p in prompt_ids], device=self.device)
        starts = width - lengths  # first real column of each row (left padding before it)
        column = torch.arange(columns, device=self.device)
        min_value = torch.finfo(self.dtype).min
        mask = torch.where(column[None, :] >= starts[:, None], 0.0, min_value).to(self.dtype)[:, None, None, :]
        cache = KVBuffer(kv)
        live = list(range(rows))  # original row of each batch row
        generated: list[list[int]] = [[] for _ in range(rows)]
        done = [False] * rows
        may_end = self._stop_table(stop) if stop else None
        tail = 4 * max(map(len, stop)) + 2 if stop else 0  # tokens that can hold a stop string
        for step in range(max_new_tokens):
            new = self._sample(logits, temperature, top_p)
            new_list = new.tolist()
            for b, r in enumerate(live):
                if done[r]:
                    continue
                t = new_list[b]
                generated[r].append(t)
                if t == eos or step + 1 == max_new_tokens:
                    done[r] = True
                elif stop and may_end[t]:
                    text = tok.decode(generated[r][-tail:], skip_special_tokens=True)
                    if any(s in text for s in stop):
                        done[r] = True
                        self._keep_prefix(prompt_ids[r], generated[r][:-1], kv[:, :, b], starts[b], width + step)
            finished = sum(done[r] for r in live)
            if finished == len(live):
                break
            if finished >= max(1, self.compact_share * len(live)):
                keep = torch.tensor([b for b, r in enumerate(live) if not done[r]], device=self.device)
                live = [r for r in live if not done[r]]
                kept = self._new_cache(len(live), columns, zeros=False)
                kept[:, :, :, :, : width + step] = kv[:, :, :, :, : width + step].index_select(2, keep)
                kv = kept
                cache = KVBuffer(kv)
                new, mask, lengths, starts = new[keep], mask[keep], lengths[keep], starts[keep]
            cache.start, cache.end = width + step, width + step + 1
            positions = (lengths + step)[:, None]
            logits = self._forward(new[:, None], positions, mask[..., : width + step + 1], cache)
            self.stats["decode_tokens"] += len(live)
        return generated

    def _prefill(self, prompts: list[tuple], width: int):
        """(last-column logits [prompts, vocab], keys and values [layers, 2, prompts, heads, width, head size])
        of distinct prompts, left-padded to `width`; a prompt's cached prefix is copied in, not read again."""
        import torch

        kv = self._new_cache(len(prompts), width)
        cached = []
        for u, p in enumerate(prompts):
            length, entry = self.prefix_cache.longest_prefix(p)
            length = min(length, len(p) - 1)  # the last prompt token is read: its logits start the sampling
            if length:
                kv[:, :, u, :, width - len(p) : width - len(p) + length] = entry[:, :, :, :length]
            cached.append(length)
        new = [len(p) - c for p, c in zip(prompts, cached)]
        block = max(new)  # columns [width - block, width) are read
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        ids = torch.full((len(prompts), block), pad, dtype=torch.long)
        for u, p in enumerate(prompts):
            seen = p[-block:]
            ids[u, block - len(seen) :] = torch.tensor(seen)
        lengths = torch.tensor([len(p) for p in prompts])
        column = torch.arange(width - block, width)  # the block's columns
        positions = (column[None, :] - (width - lengths)[:, None]).clamp(min=0)
        key = torch.arange(width)
        allowed = ((key[None, None, :] >= (width - lengths)[:, None, None])
                   & (key[None, None, :] <= column[None, :, None]))
        allowed |= key[None, None, :] == column[None, :, None]  # a padding column attends to itself (no empty row)
        mask = torch.where(allowed, 0.0, torch.finfo(self.dtype).min).to(self.dtype)[:, None]
        cache = KVBuffer(kv)
        cache.start, cache.end = width - block, width
        cache.write = (column[None, :] >= (width - torch.tensor(new))[:, None])[:, None, :, None].to(self.device)
        logits = self._forward(ids.to(self.device), positions.to(self.device), mask.to(self.device), cache)
        self.stats["prompt_tokens"] += sum(map(len, prompts))
        self.stats["prefill_tokens"] += sum(new)
        self.stats["cached_tokens"] += sum(cached)
        return logits, kv

    def _keep_prefix(self, prompt: list[int], generated: list[int], row_kv, start, end: int) -> None:
        """Keep the keys and values of prompt + generated (read at columns [start, end) of the row)."""
        if self.prefix_cache.max_bytes:
            self.prefix_cache.put(tuple(prompt) + tuple(generated), row_kv[:, :, :, int(start) : end].clone())
