"""One forward pass of a causal model over many token sequences that share prefixes, each shared prefix read once:
the PRM's calls in a tree search (a node's siblings share the prompt and their parent's path) and after sampling
(a problem's candidates share its prompt). Causal attention makes a token's output depend on the tokens before it
only, so the output at a position of the prefix is the prefix's own, and the rest of a sequence reads the prefix's
key/value cache: the same outputs (up to float rounding) for far fewer tokens.

`plan_groups` sorts the sequences and splits them where their common prefix shortens, keeping the split that saves
the most tokens (a group reads its prefix once and each member's own tokens after it); `forward_at` runs the
groups, prefixes of several groups in one padded batch, then all their members' suffixes over the cache rows of
their group, within the row and token caps of a batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

MIN_SHARED = 16  # tokens: a shorter common prefix is read with each sequence


@dataclass
class Group:
    shared: int  # tokens of the common prefix (0: read alone)
    members: list[int]  # indices of the sequences


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def plan_groups(seqs: Sequence[Sequence[int]], min_shared: int = MIN_SHARED) -> list[Group]:
    """Groups of sequences with their shared prefix length, every sequence in one group, each member with at least
    one token of its own. A run of sorted sequences whose neighbours share at least `min_shared` tokens is one
    group at its shortest common prefix, or split at that prefix's shortest links into sub-runs, whichever reads
    fewer tokens."""
    order = sorted(range(len(seqs)), key=lambda i: list(seqs[i]))
    links = [_lcp(seqs[a], seqs[b]) for a, b in zip(order, order[1:])]

    def best(lo: int, hi: int) -> tuple[int, list[Group]]:  # sequences order[lo..hi], links lo..hi-1
        if lo == hi:
            return 0, [Group(0, [order[lo]])]
        members = order[lo : hi + 1]
        shared = min(min(links[lo:hi]), min(len(seqs[i]) for i in members) - 1)
        whole = (len(members) - 1) * shared if shared >= min_shared else 0
        cuts = [k for k in range(lo, hi) if links[k] == min(links[lo:hi])]
        saved, groups, start = 0, [], lo
        for k in cuts + [hi]:
            s, g = best(start, k)
            saved, groups, start = saved + s, groups + g, k + 1
        if whole >= saved and whole > 0:
            return whole, [Group(shared, members)]
        return saved, groups

    groups: list[Group] = []
    start = 0
    for k in range(len(order)):  # runs of neighbours that share enough
        if k == len(order) - 1 or links[k] < min_shared:
            groups += best(start, k)[1]
            start = k + 1
    return groups


def _fit(groups: list[Group], lengths: Sequence[int], batch_size: int, max_tokens: int | None) -> list[Group]:
    """Groups split into chunks that fit a batch (each chunk reads the prefix once); a single row longer than
    max_tokens stays alone."""
    out = []
    for g in groups:
        width = max(lengths[i] for i in g.members)
        rows = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // width))
        out += [Group(g.shared if len(g.members[k : k + rows]) > 1 else 0, g.members[k : k + rows])
                for k in range(0, len(g.members), rows)]
    return out


def _batches(groups: list[Group], lengths: Sequence[int], batch_size: int, max_tokens: int | None):
    """Consecutive groups per batch: at most batch_size member rows and max_tokens padded tokens (rows x (longest
    prefix + longest own part): the prefix counted as the cache each row reads). Texts read alone never share a
    batch with groups: their prefix rows would be all padding, whose attention some kernels turn into NaN."""
    batch: list[Group] = []
    rows = prefix = own = 0
    for g in groups:
        g_own = max(lengths[i] for i in g.members) - g.shared
        r, p, o = rows + len(g.members), max(prefix, g.shared), max(own, g_own)
        if batch and (r > batch_size or (max_tokens is not None and r * (p + o) > max_tokens)
                      or (g.shared > 0) != (batch[0].shared > 0)):
            yield batch
            batch, r, p, o = [], len(g.members), g.shared, g_own
        batch.append(g)
        rows, prefix, own = r, p, o
    if batch:
        yield batch


def forward_at(model, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad_id: int, device,
               read: Callable, batch_size: int = 64, max_batch_tokens: int | None = None,
               min_shared: int = MIN_SHARED, pick: Sequence[Sequence[int]] | None = None) -> list[list[float]]:
    """`read(logits)` (rows x positions x outputs -> rows x positions scores) at `positions[i]` of each sequence
    i, with shared prefixes read once (module doc). With `pick`, `read` keeps an output axis (rows x positions x
    outputs) and the score at `positions[i][j]` is its output `pick[i][j]` (e.g. the log-probability of the token
    that follows)."""
    import torch
    from transformers import DynamicCache

    lengths = [len(s) for s in seqs]
    groups = _fit(plan_groups(seqs, min_shared), lengths, batch_size, max_batch_tokens)
    groups.sort(key=lambda g: (g.shared, max(lengths[i] for i in g.members)))
    out: list[list[float]] = [[] for _ in seqs]
    for batch in _batches(groups, lengths, batch_size, max_batch_tokens):
        shared = [g.shared for g in batch]
        members = [(gi, i) for gi, g in enumerate(batch) for i in g.members]
        cache, prefix_scores = None, None
        if max(shared):
            width = max(shared)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, g in enumerate(batch):
                ids[r, : g.shared] = torch.tensor(seqs[g.members[0]][: g.shared])
                mask[r, : g.shared] = 1
            cache = DynamicCache()
            with torch.inference_mode():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                               past_key_values=cache, use_cache=True).logits
            prefix_scores = read(logits)
            cache.reorder_cache(torch.tensor([gi for gi, _ in members], device=device))
            prefix_mask = mask[[gi for gi, _ in members]]
        width = max(len(seqs[i]) - shared[gi] for gi, i in members)
        ids = torch.full((len(members), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        pos = torch.zeros_like(ids)
        for r, (gi, i) in enumerate(members):
            own = seqs[i][shared[gi] :]
            ids[r, : len(own)] = torch.tensor(own)
            mask[r, : len(own)] = 1
            pos[r] = shared[gi] + torch.arange(width)
        kwargs = {}
        if cache is not None:
            kwargs = dict(past_key_values=cache, use_cache=True, position_ids=pos.to(device))
            mask = torch.cat([prefix_mask, mask], dim=1)
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits
        scores = read(logits)
        for r, (gi, i) in enumerate(members):
            p = shared[gi]
            if pick is None:
                out[i] = [float(prefix_scores[gi][q]) if q < p else float(scores[r][q - p]) for q in positions[i]]
            else:
                out[i] = _picked(prefix_scores[gi] if p else None, scores[r], p, positions[i], pick[i])
    return out


def _picked(prefix_scores, own_scores, shared: int, positions: Sequence[int], pick: Sequence[int]) -> list[float]:
    """Output pick[j] at each positions[j], from the prefix's rows below `shared`, the sequence's own after."""
    import torch

    pos, idx = torch.tensor(list(positions), dtype=torch.long), torch.tensor(list(pick), dtype=torch.long)
    inside = pos < shared
    values = torch.empty(len(pos), dtype=torch.float32)
    if inside.any():
        values[inside] = prefix_scores[pos[inside].to(prefix_scores.device),
                                       idx[inside].to(prefix_scores.device)].float().cpu()
    if (~inside).any():
        values[~inside] = own_scores[(pos[~inside] - shared).to(own_scores.device),
                                     idx[~inside].to(own_scores.device)].float().cpu()
    return values.tolist()
