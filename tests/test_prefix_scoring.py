"""The PRM reads a prefix that several texts share once (search/prefix_scoring.py): tree-search nodes and their
siblings, a problem's sampled candidates. The scores must equal reading every text whole and alone, for each kind
of checkpoint (token classification on GPT-NeoX and on Llama, whose rotary positions come from position_ids, and a
causal-LM PRM), within the batch caps; the token counts stay the paper's (every text whole)."""
import pytest
import torch

from infscale.core.stepformat import close_last_step, format_prompt
from infscale.search import prefix_scoring
from infscale.search.prm_scoring import ProcessRewardModel, normalise_step_tags, tag_token_positions


def tree_items(rows, children=3):
    """(question, path) of every node of a small tree per problem: each path's prefixes, and siblings that add
    another step to the same parent."""
    q, s = [], []
    for r in rows:
        steps = r["solution"].split("\n")
        for depth in range(1, len(steps) + 1):
            parent = "\n".join(steps[: depth - 1])
            for k in range(children):
                own = steps[depth - 1] if k == 0 else f"Step {depth}: {k} + {depth} = {k + depth} ки"
                q.append(r["question"])
                s.append((parent + "\n" if parent else "") + own)
    return q, s


def alone(prm, questions, solutions):
    """Reference: each text read whole, in a batch of its own."""
    out = []
    for q, s in zip(questions, solutions):
        ids, positions = tag_token_positions(prm.tokenizer, format_prompt(q) + normalise_step_tags(close_last_step(s)))
        ids = prm.prefix + ids
        with torch.inference_mode():
            logits = prm.model(input_ids=torch.tensor([ids])).logits
        out.append(prm.read(logits)[0][[p + len(prm.prefix) for p in positions]].tolist())
    return out


def _save(model, tok, path):
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def prm_dirs(tmp_path_factory, tokenizer_dir):
    from transformers import GPTNeoXConfig, GPTNeoXForTokenClassification, LlamaConfig, LlamaForTokenClassification

    from infscale.core.models import build_causal_lm
    from infscale.training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    small = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=512, num_labels=1, pad_token_id=tok.pad_token_id)
    root = tmp_path_factory.mktemp("prms")
    return {
        "neox": _save(GPTNeoXForTokenClassification(GPTNeoXConfig(**small)), tok, root / "neox"),
        "llama": _save(LlamaForTokenClassification(LlamaConfig(**small)), tok, root / "llama"),
        "causal": _save(build_causal_lm({"hidden_size": 32, "num_layers": 2, "num_heads": 2,
                                         "max_position_embeddings": 512}, tok, 0), tok, root / "causal"),
    }


@pytest.mark.parametrize("kind", ["neox", "llama", "causal"])
def test_shared_prefixes_give_the_scores_of_reading_each_text_alone(prm_dirs, toy_rows, kind):
    prm = ProcessRewardModel(prm_dirs[kind], batch_size=16, max_batch_tokens=1500)
    questions, solutions = tree_items(toy_rows["test"][:6])
    order = torch.randperm(len(questions), generator=torch.Generator().manual_seed(1)).tolist()  # as a search mixes
    questions, solutions = [questions[i] for i in order], [solutions[i] for i in order]
    scores, tokens = prm.score(questions, solutions)
    expected = alone(prm, questions, solutions)
    assert [len(s) for s in scores] == [len(e) for e in expected]
    assert max(abs(a - b) for s, e in zip(scores, expected) for a, b in zip(s, e)) < 1e-5
    assert tokens == [len(tag_token_positions(prm.tokenizer, format_prompt(q) + normalise_step_tags(
        close_last_step(s)))[0]) for q, s in zip(questions, solutions)]  # the paper's count: every text whole


def test_siblings_share_their_parent_and_far_fewer_tokens_are_read(prm_dirs, toy_rows):
    prm = ProcessRewardModel(prm_dirs["neox"])
    questions, solutions = tree_items(toy_rows["test"][:6])
    seqs = [tag_token_positions(prm.tokenizer, format_prompt(q) + normalise_step_tags(close_last_step(s)))[0]
            for q, s in zip(questions, solutions)]
    groups = prefix_scoring.plan_groups(seqs)
    assert sorted(i for g in groups for i in g.members) == list(range(len(seqs)))  # each text once
    for g in groups:
        assert all(seqs[i][: g.shared] == seqs[g.members[0]][: g.shared] and len(seqs[i]) > g.shared
                   for i in g.members)
        assert g.shared == 0 or g.shared >= prefix_scoring.MIN_SHARED
    read = sum(g.shared + sum(len(seqs[i]) - g.shared for i in g.members) for g in groups)
    whole = sum(map(len, seqs))
    assert read < 0.6 * whole, (read, whole)


def test_texts_that_share_little_are_read_alone():
    seqs = [[1, 2, 3, 4, 5], [1, 2, 3, 9, 9], [7] * 40, [7] * 30 + [8] * 10, [7] * 20]
    groups = {tuple(sorted(g.members)): g.shared for g in prefix_scoring.plan_groups(seqs, min_shared=16)}
    assert groups[(0,)] == groups[(1,)] == 0  # 3 tokens in common: below MIN_SHARED
    assert groups[(2, 3, 4)] == 19  # the shortest keeps a token of its own


def test_batches_with_shared_prefixes_stay_within_the_caps(prm_dirs, toy_rows):
    prm = ProcessRewardModel(prm_dirs["neox"], batch_size=8, max_batch_tokens=600)
    shapes = []
    forward = prm.model.forward

    def spy(input_ids, attention_mask, **kwargs):
        shapes.append((input_ids.shape[0], attention_mask.shape[1]))  # rows, prefix cache + own tokens
        return forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    prm.model.forward = spy
    questions, solutions = tree_items(toy_rows["test"][:4])
    prm.score(questions, solutions)
    assert len(shapes) > 2 and all(rows <= 8 and rows * width <= 600 for rows, width in shapes
                                   if rows > 1), shapes


def test_texts_read_alone_never_share_a_batch_with_a_group():
    """Their cache rows would be padding only; batches keep them apart, and every score is the text's own."""
    from transformers import LlamaConfig, LlamaForTokenClassification

    torch.manual_seed(0)
    model = LlamaForTokenClassification(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                                                    num_hidden_layers=2, num_attention_heads=2, num_labels=1,
                                                    pad_token_id=0)).eval()
    seqs = [list(range(1, 25)) + [30, 31], list(range(1, 25)) + [32, 33, 34], [40, 41, 42, 43]]
    calls = []
    forward = model.forward

    def spy(input_ids, attention_mask, **kwargs):
        calls.append(("cache" in str(type(kwargs.get("past_key_values"))).lower(), input_ids.shape[0]))
        return forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    model.forward = spy
    got = prefix_scoring.forward_at(model, seqs, [[len(s) - 1] for s in seqs], 0, "cpu",
                                    lambda logits: logits.squeeze(-1).float(), batch_size=64)
    with torch.inference_mode():
        want = [[float(forward(input_ids=torch.tensor([s])).logits[0, -1, 0])] for s in seqs]
    assert got == [pytest.approx(w, abs=1e-5) for w in want]
    assert calls == [(False, 1), (True, 1), (True, 2)]  # the lone text; then the group's prefix and its members
