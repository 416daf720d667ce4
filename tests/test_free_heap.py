"""transforms.film.release_free_heap: the C heap's free pages go back to the system after each scored batch, so a
worker's memory does not climb with film length (docs/benchmarks.md, *Memory in film length*)."""
import sys

import psutil
import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_space_scattered_through_the_heap_is_given_back():
    # 4 KB blocks go to glibc (over Python's own 512-byte allocator); keeping one in eight leaves the freed space
    # scattered between live blocks, which glibc keeps resident until it is trimmed
    from transforms.film import release_free_heap
    process = psutil.Process()
    blocks = [bytes(4000) for _ in range(60000)]
    kept = blocks[::8]
    del blocks
    before = process.memory_info().rss
    release_free_heap()
    freed_mb = (before - process.memory_info().rss) / 2**20
    assert len(kept) == 7500 and freed_mb > 100, freed_mb


def test_each_scored_batch_releases_the_free_heap(monkeypatch):
    import transforms.film as film
    calls = []
    monkeypatch.setattr(film, "release_free_heap", lambda: calls.append(1))
    scorer = type("Scorer", (), {"score": lambda self, batch: [], "cfg": None})()
    work = film._Film.__new__(film._Film)  # the film loop's state, without a film
    work.batch, work.step = [object()], type("Step", (), {"scorer": scorer})()
    work.job = type("Job", (), {"ref": None})()
    work.score_batch()
    assert calls == [1] and work.batch == []
