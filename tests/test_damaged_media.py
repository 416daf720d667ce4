"""Every kind of damage (testing.films.DAMAGE_KINDS) over real and written films, through pipeline.run (cut and
decoded, not scored, to keep it quick): every film is accounted for and the output is whole
(benchmarks.damaged_media --cli; the scored run is in docs/media.md)."""
import pytest

from benchmarks import damaged_media
from testing.films import DAMAGE_KINDS


@pytest.mark.parametrize("seed", [1, 2])
def test_damaged_films_are_each_scored_or_failed_with_a_reason(tmp_path, seed):
    table = damaged_media.main(["--cli", "--copies", "1", "--seed", str(seed), "--out", str(tmp_path),
                                "--", "--no_score", "--transcribe", "never"])
    assert [row["damage"] for row in table] == list(DAMAGE_KINDS)
    for row in table:
        assert row["problems"] == 0, row
        assert row["scored"] + sum(row["failed"].values()) == row["copies"], row
    assert sum(row["scored"] for row in table) > sum(row["copies"] for row in table) / 2
    # clips on damaged media are marked (bit flips leave no error at all, only frames the decoder concealed)
    assert sum(row["marked"] for row in table) > 0


def test_damaged_packages_and_subtitle_tracks_are_each_accounted_for(tmp_path):
    table = damaged_media.main(["--cli", "--packages", "--copies", "1", "--seed", "1", "--out", str(tmp_path),
                                "--", "--no_score", "--transcribe", "never"])
    assert [row["source"] for row in table] == ["imf", "dcp", "interop", "teletext", "pgs", "vobsub"]
    for row in table:
        assert row["problems"] == 0 and row["films"] >= row["copies"] and row["scored"], row
