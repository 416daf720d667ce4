"""Discovery: stable film ids, a cheap content fingerprint that notices changes, glob matching in Beam."""
import os
import time
import warnings

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.discover import (DiscoverFilms, content_fingerprint, film_id_for, is_film_candidate,
                                 normalise_pattern, slug, unreachable_inputs)


def test_film_id_is_readable_stable_and_path_specific():
    a = film_id_for("/archive/season 1/Intro Scene!.mp4")
    assert a.startswith("intro-scene-") and len(a.split("-")[-1]) == 10
    assert a == film_id_for("/archive/season 1/Intro Scene!.mp4")
    assert a != film_id_for("/archive/season 2/Intro Scene!.mp4")
    assert slug("???") == "film"


def test_film_ids_read_in_any_script_and_ascii_names_keep_their_old_ids():
    import re
    assert slug("Épisode deux") == "episode-deux" and slug("Amélie (2001) [1080p]") == "amelie-2001-1080p"
    assert slug("千と千尋の神隠し") == "千と千尋の神隠し" and slug("ジブリ") == "ジブリ"  # kana keep their voicing marks
    assert slug("기생충") == "기생충" and slug("शोले") == "शोले" and slug("Крёстный отец") == "крёстный-отец"
    for name in ("Intro Scene!", "S01E02_final.v2", "  --THE END--  ", "x" * 60, "a__b..c"):
        assert slug(name) == (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].rstrip("-") or "film")


def test_fingerprint_changes_with_content_anywhere_sampled(tmp_path):
    f = tmp_path / "film.bin"
    data = bytearray(os.urandom(5 << 20))
    f.write_bytes(data)
    base = content_fingerprint(str(f))
    assert base == content_fingerprint(str(f), len(data))
    for pos in (10, len(data) // 2, len(data) - 10):  # head, middle and tail blocks
        changed = bytearray(data)
        changed[pos] ^= 0xFF
        f.write_bytes(changed)
        assert content_fingerprint(str(f)) != base
    f.write_bytes(data + b"x")  # appended: size and tail change
    assert content_fingerprint(str(f)) != base
    f.write_bytes(b"")
    assert len(content_fingerprint(str(f))) == 64


def test_a_film_written_again_is_new_input_even_where_the_sampled_blocks_are_the_same(tmp_path):
    """A copy that differs only outside the three sampled blocks (damage at a quarter of the film, repaired by
    copying it again from its source; a download whose pieces came out of order) kept its old clips for good: the
    film's modification time is in the fingerprint a nightly run compares, not in the one that finds moves."""
    from transforms.discover import film_fingerprints
    f = tmp_path / "film.mkv"
    data = bytearray(os.urandom(5 << 20))
    data[len(data) // 4:len(data) // 4 + 65536] = bytes(65536)  # damaged, where no block is sampled
    f.write_bytes(data)
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))
    content, compared = film_fingerprints(str(f))
    data[len(data) // 4:len(data) // 4 + 65536] = os.urandom(65536)  # the good copy, same size
    f.write_bytes(data)
    os.utime(f, ns=(2_000_000_000, 2_000_000_000))
    again = film_fingerprints(str(f))
    assert again[0] == content and again[1] != compared
    assert film_fingerprints(str(f)) == again  # nothing written: the same


def test_fingerprint_is_cheap_on_a_huge_file(tmp_path):
    f = tmp_path / "huge.mkv"
    with open(f, "wb") as fh:
        fh.truncate(50 << 30)  # a sparse 50 GB file: only the three sampled MiB are read
    t0 = time.perf_counter()
    fp = content_fingerprint(str(f))
    assert time.perf_counter() - t0 < 2.0 and len(fp) == 64


def test_candidates_and_patterns(tmp_path):
    assert not is_film_candidate("/a/film.en.srt") and not is_film_candidate("/a/FILM.VTT")
    assert is_film_candidate("/a/film.mkv") and is_film_candidate("gs://bucket/.films/reel 1.MXF")
    # what file servers, desktops and media managers leave beside films
    for other in ("/a/.DS_Store", "/a/._film.mp4", "/a/Thumbs.db", "/a/poster.JPEG", "/a/fanart.webp",
                  "/a/movie.xml", "/a/@eaDir/film.mp4/SYNOVIDEO_VIDEO_SCREENSHOT.mp4", "/a/__MACOSX/film.mp4",
                  "/a/#recycle/film.mp4", "s3://b/$RECYCLE.BIN/film.mkv", "/a/cues.tsv", "/a/reel1.EDL",
                  "/a/show.cdl", "/a/grade.cube", "/a/avid.ale", "/a/delivery.xlsx", "/a/notes.docx", "/a/meta.yaml",
                  # still downloading (scored, then scored again once complete: twice for good, before 2026-12-07)
                  "/a/film.mkv.part", "/a/film.mp4.crdownload", "/a/film.mkv.!qB", "/a/film.mp4.aria2",
                  "/a/film.mov.filepart",
                  "/a/out/_run.lock"):  # a run's guard file, where --output lies inside an --input folder
        assert not is_film_candidate(other), other
    assert normalise_pattern(str(tmp_path)) == str(tmp_path) + "/**"
    assert normalise_pattern("gs://bucket/films/") == "gs://bucket/films/**"
    assert normalise_pattern("/x/*.mp4") == "/x/*.mp4"


def test_release_names_are_taken_literally(tmp_path):
    """A path that names an existing file or folder matches it whatever pattern characters it has."""
    folder = tmp_path / "Season [1]"
    folder.mkdir()
    film, other = folder / "Film (2019) [1080p].mkv", folder / "Film (2019) 1.mkv"
    for p in (film, other):
        p.write_bytes(os.urandom(100))
    assert normalise_pattern(str(folder)) == str(tmp_path / "Season [[]1]") + "/**"
    assert normalise_pattern(str(film)) == str(tmp_path) + "/Season [[]1]/Film (2019) [[]1080p].mkv"
    assert normalise_pattern(str(tmp_path / "*.mkv")) == str(tmp_path / "*.mkv")  # a pattern stays one
    with warnings.catch_warnings(record=True) as said:  # the launcher's own checks read such a name without a word
        warnings.simplefilter("always")
        assert unreachable_inputs(str(film)) == [] == unreachable_inputs(str(folder))
    assert not [w for w in said if "nested set" in str(w.message)]  # printed in the launcher's output before
    with BeamTestPipeline() as p:
        found = p | DiscoverFilms([str(film)])
        assert_that(found.films | beam.Map(lambda r: r.path), equal_to([str(film)]))
    with BeamTestPipeline() as p:
        found = p | DiscoverFilms([str(folder)])
        assert_that(found.films | beam.Map(lambda r: r.path), equal_to([str(film), str(other)]))


def test_discover_in_beam_dedupes_overlapping_globs_and_skips_sidecars(tmp_path):
    (tmp_path / "sub").mkdir()
    paths = [tmp_path / "a.mp4", tmp_path / "sub" / "b.mkv"]
    for p in paths:
        p.write_bytes(os.urandom(1000))
    (tmp_path / "a.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    with BeamTestPipeline() as p:
        found = p | DiscoverFilms([str(tmp_path / "*.mp4"), str(tmp_path), str(tmp_path / "nothing-*.mov")])
        assert_that(found.films | beam.Map(lambda r: (r.path, r.film_id, len(r.fingerprint), r.size_bytes)),
                    equal_to([(str(q), film_id_for(str(q)), 64, 1000) for q in paths]))
        assert_that(found.errors, equal_to([]), label="no errors")


def test_a_named_pipe_is_neither_read_as_a_film_nor_as_subtitles(tmp_path):
    """A named pipe in an archive (named like a film or like its subtitles): reading one with no writer never ends,
    and one held a whole run (before 2026-12-06). The film-named one is an error row, at once; the sidecar-named one
    is not a sidecar."""
    import signal

    from testing.films import make_film
    from transforms.discover import FingerprintFilm, special_file
    from transforms.elements import FilmRef
    from transforms.subtitles import sidecar_files, sidecars_digest
    film = make_film(tmp_path / "film.mp4", duration_s=1.0)
    os.mkfifo(tmp_path / "pipe.mp4")
    os.mkfifo(tmp_path / "film.en.srt")
    signal.alarm(30)  # a regression hangs: fail instead
    try:
        pipe = str(tmp_path / "pipe.mp4")
        (out,) = list(FingerprintFilm().process(FilmRef(pipe, 0, film_id_for(pipe))))
        assert out.tag == "errors" and out.value.error_type == "NotAFile" and out.value.fatal
        assert out.value.message.startswith("a named pipe, not a file")
        assert sidecar_files(str(film)) == [] and sidecars_digest(str(film)) is None
    finally:
        signal.alarm(0)
    assert special_file(str(film)) is None and special_file(str(tmp_path)) is None
    assert special_file("gs://bucket/film.mp4") is None


def test_what_the_listing_cannot_reach_is_found_where_the_pattern_covers_it(tmp_path, monkeypatch):
    """unreachable_inputs: links to files that are not there and folders that cannot be read, only where the
    --input pattern could match a film (a closed folder below 'archive/*.mp4' is not its business); a volume's own
    closed folders, links to sidecars and other filesystems give nothing."""
    from transforms.discover import unreachable_inputs
    (tmp_path / "sub" / "locked").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    (tmp_path / "lost+found").mkdir()
    (tmp_path / "a.mp4").symlink_to(tmp_path / "gone" / "a.mp4")
    (tmp_path / "sub" / "b.mkv").symlink_to(tmp_path / "gone" / "b.mkv")
    (tmp_path / "a.srt").symlink_to(tmp_path / "gone" / "a.srt")
    scandir = os.scandir

    def closed(path="."):  # permissions do not stop root, who runs the tests: the folders are closed here
        if os.path.basename(str(path)) in ("locked", "private", "lost+found", "other", "shut"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", closed)
    link = f"a link to {tmp_path / 'gone' / 'a.mp4'}, which is not there"
    shut = "a folder that cannot be read (Permission denied)"
    assert unreachable_inputs(str(tmp_path / "*.mp4")) == [(str(tmp_path / "a.mp4"), link)]
    assert unreachable_inputs(str(tmp_path / "a.mp4")) == [(str(tmp_path / "a.mp4"), link)]
    assert [p for p, _ in unreachable_inputs(str(tmp_path))] == [
        str(tmp_path / "a.mp4"), str(tmp_path / "private"), str(tmp_path / "sub" / "b.mkv"),
        str(tmp_path / "sub" / "locked")]
    assert unreachable_inputs(str(tmp_path / "sub" / "*" / "*.mp4")) == [(str(tmp_path / "sub" / "locked"), shut)]
    assert unreachable_inputs("gs://bucket/films/*.mp4") == []
    # A pattern with a fixed folder below its glob: a closed folder beside it is not covered ('other' of
    # archive/x/other), one above it is (archive/shut could hold films/), with or without '**'.
    (tmp_path / "archive" / "x" / "films").mkdir(parents=True)
    (tmp_path / "archive" / "x" / "other").mkdir()
    (tmp_path / "archive" / "shut").mkdir()
    for pattern in ("archive/*/films/**", "archive/*/films/*.mp4"):
        assert unreachable_inputs(str(tmp_path / pattern)) == [(str(tmp_path / "archive" / "shut"), shut)], pattern
    monkeypatch.chdir(tmp_path)
    assert unreachable_inputs("*.mp4") == [("a.mp4", link)]  # as Beam names files in the working folder


def _listed(pattern: str) -> list[str]:
    from transforms.discover import match_pattern
    return sorted(m.path for m in match_pattern(normalise_pattern(pattern)))


def test_films_in_folders_behind_links_are_scored_under_the_given_path_and_a_loop_ends(tmp_path):
    """A catalogue kept as links into storage volumes: before 2026-12-06 Beam's listing did not enter a folder behind
    a link, so its films were never scored (and unreachable_inputs did not look there either). A folder reached twice
    (a loop, or by its own path too) is listed once, under the path reached without a link."""
    import signal
    (tmp_path / "vol1" / "show").mkdir(parents=True)
    (tmp_path / "vol1" / "show" / "ep1.mp4").write_bytes(os.urandom(100))
    (tmp_path / "b.mkv").write_bytes(os.urandom(100))
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "show").symlink_to(tmp_path / "vol1" / "show")  # a folder link
    (cat / "b.mkv").symlink_to(tmp_path / "b.mkv")  # a file link
    (cat / "again").symlink_to(cat)  # loops
    (tmp_path / "vol1" / "show" / "up").symlink_to(tmp_path / "vol1")
    (tmp_path / "vol1" / "show" / "gone.mp4").symlink_to(tmp_path / "vol2" / "gone.mp4")
    films = [str(cat / "b.mkv"), str(cat / "show" / "ep1.mp4")]
    signal.alarm(30)  # a regression hangs: fail instead
    try:
        assert _listed(str(cat)) == films == _listed(str(cat / "**"))
        assert _listed(str(cat / "*" / "*.mp4")) == films[1:]
        assert _listed(str(tmp_path / "**" / "*.mp4")) == [str(tmp_path / "vol1" / "show" / "ep1.mp4")]
        assert [p for p, _ in unreachable_inputs(str(cat))] == [str(cat / "show" / "gone.mp4")]
    finally:
        signal.alarm(0)
    with BeamTestPipeline() as p:
        found = p | DiscoverFilms([str(cat)])
        assert_that(found.films | beam.Map(lambda r: r.path), equal_to(films))


def test_a_globstar_folder_may_be_none_locally_and_remotely(tmp_path, monkeypatch):
    """'archive/**/*.mp4' (the README's example) matches archive/top.mp4 too, as a shell's globstar does; before
    2026-12-06 Beam's '.*/' needed a folder, and every film at the top of the archive was missed."""
    import re

    from apache_beam.io.filesystem import FileMetadata, FileSystem, MatchResult
    from apache_beam.io.filesystems import FileSystems

    from transforms.discover import match_pattern, pattern_regex
    (tmp_path / "sub").mkdir()
    for name in ("top.mp4", "sub/inner.mp4", "top.mkv"):
        (tmp_path / name).write_bytes(os.urandom(10))
    assert _listed(str(tmp_path / "**" / "*.mp4")) == [str(tmp_path / "sub" / "inner.mp4"), str(tmp_path / "top.mp4")]
    assert pattern_regex("a/**/*.mp4").fullmatch("a/x.mp4") and pattern_regex("**/x.mp4").fullmatch("x.mp4")
    assert not pattern_regex("a/**/*.mp4").fullmatch("ab/x.mp4") and pattern_regex("a/**").fullmatch("a/b/c")
    objects = ["gs://b/archive/top.mp4", "gs://b/archive/s/inner.mp4", "gs://b/archive/.snapshot/h/top.mp4",
               "gs://b/archived/x.mp4"]

    def bucket(patterns):  # a bucket as Beam lists one: every object under the pattern's fixed part, then its regex
        return [MatchResult(p, [FileMetadata(o, 1) for o in objects if o.startswith(re.split(r"[*?\[]", p)[0])
                                and re.match(FileSystem.translate_pattern(p), o)]) for p in patterns]
    monkeypatch.setattr(FileSystems, "match", bucket)
    assert sorted(m.path for m in match_pattern("gs://b/archive/**/*.mp4")) == objects[:2][::-1]
    assert [m.path for m in match_pattern("gs://b/archive/*.mp4")] == objects[:1]


def test_an_existing_folder_is_taken_literally_with_a_trailing_slash_and_so_is_the_demos_output(tmp_path,
                                                                                                  monkeypatch):
    """'Films [2024]/' as tab completion gives it: before 2026-12-06 the slash made it a pattern, '[2024]' a character
    class, and it matched no film; pipeline.demo's archive glob under an --output 'demo [1]' the same."""
    import pipeline.demo as demo
    folder = tmp_path / "Films [2024]"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(os.urandom(10))
    assert normalise_pattern(str(folder) + "/") == normalise_pattern(str(folder)) == str(tmp_path / "Films [[]2024]/**")
    assert _listed(str(folder) + "/") == [str(folder / "a.mp4")]
    assert normalise_pattern("gs://bucket/Films [2024]/") == "gs://bucket/Films [2024]/**"  # remote: as before
    # a glob below such a folder: the folder's name taken literally, the glob kept (review, 2026-12-07: no film)
    (folder / "b.mkv").write_bytes(os.urandom(10))
    assert normalise_pattern(str(folder / "*.mp4")) == str(tmp_path / "Films [[]2024]/*.mp4")
    assert _listed(str(folder / "*.mp4")) == [str(folder / "a.mp4")]
    assert normalise_pattern(str(tmp_path / "Films [0-9]*" / "*.mp4")) == str(tmp_path / "Films [0-9]*" / "*.mp4")
    given = []
    monkeypatch.setattr(demo, "make_demo_archive", lambda root: root)  # (made below: no PyAV films)
    monkeypatch.setattr(demo, "run_main", lambda argv: given.append(argv) or 0)
    (tmp_path / "demo [1]" / "archive").mkdir(parents=True)
    (tmp_path / "demo [1]" / "archive" / "reunion.mp4").write_bytes(os.urandom(10))
    assert demo.main(["--output", str(tmp_path / "demo [1]")]) == 0
    assert _listed(given[0][given[0].index("--input") + 1]) == [str(tmp_path / "demo [1]" / "archive" / "reunion.mp4")]


def test_films_in_hidden_folders_below_the_input_are_not_listed(tmp_path):
    """A desktop's trash, a filer's snapshots, a sync tool's partial copies: hidden files were skipped, but before
    2026-12-06 the films inside hidden folders were scored. A hidden folder given as --input itself is listed."""
    for name in ("a.mp4", ".Trash-1000/files/deleted.mkv", ".snapshot/hourly.0/a.mp4", ".sync/partial.mkv",
                 "show/.cache/x.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(os.urandom(10))
    assert _listed(str(tmp_path)) == [str(tmp_path / "a.mp4")] == _listed(str(tmp_path / "**" / "*.mp4"))
    assert _listed(str(tmp_path / "*" / "*" / "*.mp4")) == []
    assert _listed(str(tmp_path / ".snapshot")) == [str(tmp_path / ".snapshot" / "hourly.0" / "a.mp4")]
    assert _listed(str(tmp_path / ".s*" / "**")) == [str(tmp_path / ".snapshot" / "hourly.0" / "a.mp4"),
                                                    str(tmp_path / ".sync" / "partial.mkv")]


def test_a_folder_behind_several_links_is_listed_under_its_smallest_path(tmp_path):
    """Among the link paths to one folder the smallest is listed, whatever the walk finds first: before 2026-12-06 the
    first link found won (here archive/z/show, found before the link inside archive/a), and adding a link moved a
    folder's films to new paths."""
    (tmp_path / "vol1" / "show").mkdir(parents=True)
    (tmp_path / "vol1" / "show" / "ep1.mp4").write_bytes(os.urandom(10))
    (tmp_path / "vol2").mkdir()
    (tmp_path / "vol2" / "show").symlink_to(tmp_path / "vol1" / "show")
    arch = tmp_path / "archive"
    (arch / "z").mkdir(parents=True)
    (arch / "z" / "show").symlink_to(tmp_path / "vol1" / "show")
    (arch / "a").symlink_to(tmp_path / "vol2")
    assert _listed(str(arch)) == [str(arch / "a" / "show" / "ep1.mp4")]


def test_a_file_reached_by_two_paths_is_listed_once(tmp_path):
    """A file link beside its target, or two --input patterns overlapping through a folder link: before 2026-12-06 the
    film was listed (and scored) twice. The path without a link is kept; remote listings are as they were."""
    from transforms.discover import match_patterns
    arch, vol = tmp_path / "archive", tmp_path / "vol1" / "show"
    (arch / "library").mkdir(parents=True)
    (arch / "by-genre").mkdir()
    vol.mkdir(parents=True)
    for p in (arch / "library" / "f1.mp4", vol / "ep1.mp4"):
        p.write_bytes(os.urandom(10))
    (arch / "by-genre" / "f1.mp4").symlink_to(arch / "library" / "f1.mp4")
    (arch / "show").symlink_to(vol)
    assert _listed(str(arch)) == [str(arch / "library" / "f1.mp4"), str(arch / "show" / "ep1.mp4")]
    patterns = [normalise_pattern(str(arch)), normalise_pattern(str(vol))]
    assert [sorted(m.path for m in r.metadata_list) for r in match_patterns(patterns)] == [
        [str(arch / "library" / "f1.mp4")], [str(vol / "ep1.mp4")]]
    with BeamTestPipeline() as p:
        films = p | DiscoverFilms([str(arch), str(vol)])
        assert_that(films.films | beam.Map(lambda r: r.path), equal_to([str(arch / "library" / "f1.mp4"),
                                                                        str(vol / "ep1.mp4")]))


def test_a_hard_link_is_scored_once_and_said(tmp_path, caplog):
    """Two names of one file (a hard link, which no listing tells from a film of its own): listed once, and the log
    says which path stands for both (before 2026-12-07 the other path had no outputs and no word why)."""
    arch = tmp_path / "archive"
    (arch / "library").mkdir(parents=True)
    (arch / "by-genre").mkdir()
    (arch / "library" / "f1.mp4").write_bytes(os.urandom(10))
    os.link(arch / "library" / "f1.mp4", arch / "by-genre" / "f1.mp4")
    with caplog.at_level("INFO", logger="transforms.discover"):
        assert _listed(str(arch)) == [str(arch / "by-genre" / "f1.mp4")]
    assert (f"1 file(s) reached by more than one path (links) are scored once each: {arch / 'library' / 'f1.mp4'} "
            f"as {arch / 'by-genre' / 'f1.mp4'}" in caplog.text)


def test_a_dangling_folder_link_is_unreachable_under_a_glob_too(tmp_path):
    """'archive/**/*.mp4' with a folder link whose volume is not mounted: before 2026-12-06 only a folder --input
    reported it, and under the glob its films were counted gone. A dangling link named like a file the pattern does
    not match, or outside the folders it enters, is not reported."""
    from transforms.discover import unreachable_inputs
    arch = tmp_path / "archive"
    (arch / "cat").mkdir(parents=True)
    (arch / "cat" / "docs").symlink_to(tmp_path / "vol2" / "docs")
    (arch / "cat" / "notes.mkv").symlink_to(tmp_path / "vol2" / "notes.mkv")
    why = f"a link to {tmp_path / 'vol2' / 'docs'}, which is not there"
    assert unreachable_inputs(str(arch / "**" / "*.mp4")) == [(str(arch / "cat" / "docs"), why)]
    assert unreachable_inputs(str(arch / "*" / "*.mp4")) == []
    assert [p for p, _ in unreachable_inputs(str(arch))] == [str(arch / "cat" / name) for name in ("docs", "notes.mkv")]


def test_a_folder_name_typed_in_the_other_unicode_form_finds_its_films(tmp_path):
    """A macOS copy stores 'Amélie' decomposed (NFD); typed composed (NFC) it matched no film, though `ls` shows
    the same name (found in review). The literal part of a pattern is read in the form it is stored in."""
    import unicodedata
    from transforms.discover import stored_form
    stored = tmp_path / unicodedata.normalize("NFD", "Amélie (2001)")
    stored.mkdir()
    (stored / "film.mp4").write_bytes(b"x")
    typed = str(tmp_path / unicodedata.normalize("NFC", "Amélie (2001)"))
    assert typed != str(stored) and stored_form(typed) == str(stored)
    assert normalise_pattern(typed) == str(stored) + "/**"
    assert stored_form(typed + "/*.mp4") == str(stored) + "/*.mp4"
    assert stored_form(str(tmp_path / "nothing" / "*.mp4")) == str(tmp_path / "nothing" / "*.mp4")
    assert stored_form("gs://b/Amélie/") == "gs://b/Amélie/"  # (an object store's names are as typed)
