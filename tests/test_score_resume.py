"""A score job resumes from its last finished shard, as generation does: a run killed after some shards scores
only the rest when run again, loads the PRM only if a shard is left, and ends with what one pass would give."""
import pytest

from infscale.search.prm_scoring import score_records_in_shards


class CountingPRM:
    """Step scores from the text alone (its length and step count), counting the texts it reads."""

    def __init__(self):
        self.read = 0

    def score(self, questions, texts):
        self.read += len(texts)
        return [[len(t) / 100, t.count("\n") / 10] for t in texts], [len(q) + len(t) for q, t in zip(questions, texts)]


class Killed(Exception):
    pass


def records(n=7):
    return [{"id": f"p{i}", "question": f"q{i}", "candidates": [{"text": "a" * (i + k) + "\nb"} for k in range(3)]}
            for i in range(n)]


def test_killed_score_job_resumes_from_its_last_finished_shard(tmp_path):
    shard_dir, loads = tmp_path / "scored.jsonl.shards", []

    def load():
        loads.append(CountingPRM())
        return loads[-1]

    killing = {"after": 2}

    def dying_load():
        prm = load()
        score = prm.score

        def score_then_die(questions, texts):
            if killing["after"] == 0:
                raise Killed
            killing["after"] -= 1
            return score(questions, texts)

        prm.score = score_then_die
        return prm

    with pytest.raises(Killed):
        score_records_in_shards(dying_load, records(), 2, shard_dir, "stamp")
    assert sorted(p.name for p in shard_dir.glob("shard-*.jsonl")) == ["shard-00000.jsonl", "shard-00001.jsonl"]
    scored, report = score_records_in_shards(load, records(), 2, shard_dir, "stamp")
    assert (report.reused, report.computed) == (2, 2)
    assert loads[-1].read == 3 * 3  # problems 4-6 only (3 candidates each)
    # what one uninterrupted pass gives, computed here without shards
    expected = records()
    for r in expected:
        for c in r["candidates"]:
            c["step_scores"] = [len(c["text"]) / 100, c["text"].count("\n") / 10]
            c["prm_tokens"] = len(r["question"]) + len(c["text"])
    assert scored == expected
    _, again = score_records_in_shards(lambda: pytest.fail("nothing left to score"), records(), 2, shard_dir,
                                       "stamp")
    assert (again.reused, again.computed) == (4, 0)


def test_shards_of_another_prm_are_not_reused(tmp_path):
    shard_dir = tmp_path / "s"
    score_records_in_shards(CountingPRM, records(4), 2, shard_dir, "prm A")
    prm = CountingPRM()
    _, report = score_records_in_shards(lambda: prm, records(4), 2, shard_dir, "prm B")
    assert (report.reused, report.computed) == (0, 2) and prm.read == 4 * 3
