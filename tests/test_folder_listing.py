"""A film's local listing (film_listing): the same files as Beam's match gave, with the film's folder listed once
while it is unchanged, not walked below it for every film of it (before 2026-12-07 the nightly fingerprint of a
folder of N films cost N walks of it)."""
import os
import time

import pytest
from apache_beam.io.filesystems import FileSystems

from transforms import subtitles
from transforms.discover import film_fingerprints, literal_glob
from transforms.subtitles import SUBTITLE_FOLDERS, film_listing, sidecar_files


def _beam_listing(film_path: str) -> set:
    """(path, size, mtime) of what film_listing gave before 2026-12-07: Beam's match of FILM*, of each subtitle
    folder's **, and with loose files in one, of FOLDER/*."""
    folder = FileSystems.split(film_path)[0]
    patterns = [literal_glob(os.path.splitext(film_path)[0]) + "*"]
    patterns += [literal_glob(FileSystems.join(folder, name)) + "/**" for name in SUBTITLE_FOLDERS]
    listed = [m for result in FileSystems.match(patterns) for m in result.metadata_list]
    if any(subtitles._subtitle_folder_place(film_path, m.path) == "loose" for m in listed):
        listed += FileSystems.match([literal_glob(folder) + "/*"])[0].metadata_list
    return {(m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in listed}


def _write(path, text="x"):
    """A small file, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def scandirs(monkeypatch):
    """The folders os.scandir lists (os.walk lists through it too), with no folder's names kept from before."""
    monkeypatch.setattr(subtitles, "_folder_names", {})
    calls, real = [], os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": calls.append(os.fspath(path)) or real(path))
    return calls


def _settle(folder, age_s=60):
    """The folder's mtime set back, as an archive's folder unchanged since the last night's run."""
    then = time.time() - age_s
    os.utime(folder, (then, then))


@pytest.mark.parametrize("folder_name", ["Films", "Films [2024]"])
def test_film_listing_gives_what_beams_match_gave(tmp_path, folder_name, scandirs):
    folder = tmp_path / folder_name
    for name in ("Film.mp4", "Film.en.srt", "Film.srt", "Film.forced.en.srt", "Film_ENG.srt", "film.en.srt",
                 "Film.trailer.mp4", "Film.trailer.en.srt", "Other.mp4", "Other.en.srt", "Film\\x.srt",
                 "Subs/2_English.srt", "Subs/Film/3_French.srt", "Subs/Other.fr.srt",
                 "extras/notes.txt", "extras/Film.en.srt", "Film.bonus/Film.de.srt"):
        _write(folder / name, name)
    os.symlink(folder / "gone.srt", folder / "Film.broken.srt")  # a broken link: Beam's listing leaves it out
    film = str(folder / "Film.mp4")
    listed = {(m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in film_listing(film)}
    assert listed == _beam_listing(film)
    assert {os.path.basename(p) for p, _, _ in listed} >= {"Film.mp4", "Film.en.srt", "2_English.srt", "Other.mp4"}
    _settle(folder)  # the kept names give the same listing, and a file's new size is seen without a new name
    assert {(m.path, m.size_in_bytes) for m in film_listing(film)} == {(p, s) for p, s, _ in listed}
    _write(folder / "Film.en.srt", "longer subtitles")
    _settle(folder)
    again = {(m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in film_listing(film)}
    assert again == _beam_listing(film) and (str(folder / "Film.en.srt"), 16) in {(p, s) for p, s, _ in again}


def test_film_listing_reads_neither_below_the_folder_nor_beside_a_bracketed_one(tmp_path, scandirs):
    archive = tmp_path / "archive"
    for name in ("Film [2024]/Film [2024].mkv", "Film [2024]/Film [2024].en.srt", "Film [2024]/Subs/2_English.srt",
                 "Other [2023]/Other [2023].mkv", "Top.mp4", "Top.en.srt", "deep/a/b.txt"):
        _write(archive / name)
    film = str(archive / "Film [2024]" / "Film [2024].mkv")
    assert [os.path.basename(m.path) for m in sidecar_files(film)] == ["Film [2024].en.srt", "2_English.srt"]
    assert set(scandirs) == {str(archive / "Film [2024]"), str(archive / "Film [2024]" / "Subs")}
    scandirs.clear()
    assert [os.path.basename(m.path) for m in sidecar_files(str(archive / "Top.mp4"))] == ["Top.en.srt"]
    assert scandirs == [str(archive)]  # before 2026-12-07 every folder below it too


def test_a_folder_of_films_is_listed_once_and_a_new_sidecar_is_seen(tmp_path, scandirs):
    folder = tmp_path / "films"
    films = [folder / f"film_{i:03d}.mp4" for i in range(300)]
    for i, film in enumerate(films):
        _write(film, f"film {i}")
    _write(folder / "film_007.en.srt", "1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    _settle(folder)
    before = [film_fingerprints(str(film)) for film in films]
    assert scandirs.count(str(folder)) == 1
    assert before[7][0] != before[7][1] and before[8][0] != before[8][1]  # (the second: with the film's mtime too)

    _write(folder / "film_008.fr.srt", "1\n00:00:01,000 --> 00:00:02,000\nBonjour\n")  # the folder's mtime moves
    after = film_fingerprints(str(films[8]))
    assert after[0] == before[8][0] and after[1] != before[8][1]
    # a folder changed just now is not kept: a file added in the same mtime tick would not change it
    film_fingerprints(str(films[9]))
    assert scandirs.count(str(folder)) == 3
