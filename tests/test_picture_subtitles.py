"""Picture subtitles (Blu-ray PGS, DVD VobSub), embedded or beside the film, are read by OCR as the film's lines
(transforms.image_subtitles, model.ocr). The pictures are drawn from text here (testing.picture_subs) as discs carry
them: light text in a dark outline, anti-aliased, in PGS's 8-bit palette or a DVD's four pixel values."""
from pathlib import Path

import numpy as np
import pytest

from pipeline.run import run
from testing.films import make_film, write_srt
from testing.picture_subs import render_lines, sup_bytes, with_picture_track, write_vobsub
from tests.test_pipeline_media import BASE, table
from transforms.discover import film_id_for
from transforms.elements import FilmRef
from transforms.image_subtitles import picture_events, read_picture_subtitles
from transforms.probe import probe_film
from transforms.subtitles import LoadSubtitles, load_cues, sidecars_digest

LINES = [(1.0, 3.0, ["I never said I was sorry."]), (4.0, 6.5, ["Run!", "Now, before it sees us."]),
         (7.0, 8.5, ["\u00c9tienne? Where's the money, 42%?"])]
# the recogniser reads accented capitals as plain ones (the text model's uncased tokenizer drops accents anyway)
WANT = ["I never said I was sorry.", "Run! Now, before it sees us.", "Etienne? Where's the money, 42%?"]


def job(film: Path, **kw):
    ref = FilmRef(str(film), film.stat().st_size, film_id_for(str(film)), "fp")
    return list(LoadSubtitles("c", **kw).process((ref, probe_film(str(film)))))[-1]


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    return make_film(tmp_path_factory.mktemp("films") / "source.mp4", duration_s=9.0)


@pytest.mark.parametrize("kind,suffix", [("pgs", ".mkv"), ("dvd", ".mkv"), ("dvb", ".mkv"), ("dvb", ".ts")])
def test_an_embedded_picture_track_is_the_films_dialogue(tmp_path, film, kind, suffix):
    """A rip's PGS or VobSub track, a broadcast recording's DVB track, is read line by line, two-line pictures as
    one line, at the pictures' times on the film's clock; no speech recognition is needed, and a row says the lines
    were read by OCR."""
    rip = with_picture_track(film, tmp_path / f"rip{suffix}", kind, LINES, language="eng")
    info = probe_film(str(rip))
    assert info.picture_subtitle_streams == (2,) and info.image_subtitle_codecs == (f"{kind}sub",)
    assert probe_film(str(rip)).picture_subtitle_streams == (2,)
    got = job(rip, transcribe="auto")
    assert [c.text for c in got.cues] == WANT
    offset = got.cues[0].start_s - 1.0  # the film's clock starts at its first packet (AAC priming)
    assert abs(offset) < 0.1
    for cue, (start, end, _) in zip(got.cues, LINES):
        assert abs(cue.start_s - offset - start) < 0.01 and abs(cue.end_s - offset - end) < 0.02
    assert not got.needs_asr and {c.language for c in got.cues} == {"en"}
    assert [(e.error_type, e.fatal) for e in got.warnings] == [("PictureSubtitles", False)]
    assert "read by OCR from the subtitle pictures of picture track 2" in got.warnings[0].message


@pytest.mark.parametrize("kind", ["sup", "idx"])
def test_a_picture_sidecar_is_read(tmp_path, film, kind):
    """film.en.sup (Blu-ray) and film.idx + film.sub (DVD VobSub) beside the film are read on the sidecar's own
    clock; the sidecar counts in the film's fingerprint, so a nightly run re-reads a film whose pictures change."""
    movie = Path(tmp_path / "movie.mp4")
    movie.write_bytes(film.read_bytes())
    assert sidecars_digest(str(movie)) is None
    if kind == "sup":
        (tmp_path / "movie.en.sup").write_bytes(sup_bytes(LINES))
    else:
        write_vobsub(tmp_path / "movie.idx", LINES, language="en")
    digest = sidecars_digest(str(movie))
    got = job(movie, transcribe="auto")
    assert [(round(c.start_s, 2), round(c.end_s, 1), c.text) for c in got.cues] == [
        (s, round(e, 1), t) for (s, e, _), t in zip(LINES, WANT)]
    assert [e.error_type for e in got.warnings] == ["PictureSubtitles"] and not got.needs_asr
    assert digest is not None
    write_srt(tmp_path / "movie.en.srt", [(0.5, 1.5, "A text file wins.")])  # text is exact and cheap: first
    assert [c.text for c in job(movie).cues] == ["A text file wins."]


def test_tracks_are_chosen_by_language_and_a_forced_track_comes_last(tmp_path, film):
    """Of several picture tracks the one in a language the text path reads comes first, a forced track (lines
    only where the film leaves its language) after every other, and a film whose lines come from a forced track
    is transcribed too (as with text tracks)."""
    french = with_picture_track(film, tmp_path / "fr.mkv", "pgs", [(1.0, 2.0, ["Je ne sais pas."])], language="fre")
    both = with_picture_track(french, tmp_path / "both.mkv", "pgs", [(1.0, 2.0, ["I do not know."])],
                              language="eng")
    assert [c.text for c in job(both).cues] == ["I do not know."]
    assert [c.text for c in job(both, preferred_language="fr", text_languages=("en", "fr")).cues] == [
        "Je ne sais pas."]
    forced = with_picture_track(film, tmp_path / "forced.mkv", "pgs", [(1.0, 2.0, ["Stop right there."])],
                                language="eng", forced=True)
    plus = with_picture_track(forced, tmp_path / "plus.mkv", "dvd", [(3.0, 4.0, ["The full dialogue."])],
                              language="eng")
    assert [c.text for c in job(plus).cues] == ["The full dialogue."]
    only_forced = job(forced, transcribe="auto")
    assert [c.text for c in only_forced.cues] == ["Stop right there."] and only_forced.needs_asr


def test_of_many_picture_tracks_only_the_best_one_is_read(tmp_path, film, monkeypatch):
    """A disc carries a subtitle track per language: OCR reads them one at a time, best first by tag, and stops at
    the first whose lines the text path reads, so twenty languages cost one track's OCR, not twenty."""
    from model.ocr import LineReader
    rip = film
    for k, tag in enumerate(["ger", "eng", "fre"]):
        rip = with_picture_track(rip, tmp_path / f"rip{k}.mkv", "pgs", [(1.0, 2.0, [f"Line in {tag}."])], language=tag)
    real, read = LineReader.load(), []

    class Counting:
        def read(self, grey):
            read.append(grey.shape)
            return real.read(grey)
    monkeypatch.setattr(LineReader, "load", staticmethod(lambda threads=1: Counting()))
    got = job(rip)
    assert [c.text for c in got.cues] == ["Line in eng."] and len(read) == 1


def test_a_track_in_a_script_the_recogniser_does_not_read_is_left_out(tmp_path, film):
    """The recogniser reads Latin and Chinese script: a Russian or Arabic track would come out as Latin nonsense, so
    a track tagged with such a language is not read, and a warning says why; a Latin-script language is read."""
    russian = with_picture_track(film, tmp_path / "ru.mkv", "pgs", [(1.0, 2.0, ["Privet"])], language="rus")
    got = job(russian, transcribe="auto")
    assert got.cues == () and got.needs_asr
    rows = {e.error_type: e.message for e in got.warnings}
    assert "track 2 (rus) not read: the OCR recogniser reads Latin and Chinese script, not Cyrl" in rows["SubtitleWarning"]
    assert "ImageSubtitles" in rows
    german = with_picture_track(film, tmp_path / "de.mkv", "pgs", [(1.0, 2.0, ["Wo ist der Bahnhof?"])],
                                language="ger")
    assert [c.text for c in job(german, text_languages=("en", "de")).cues] == ["Wo ist der Bahnhof?"]


@pytest.mark.parametrize("kind", ["pgs", "dvd"])
def test_a_track_whose_every_picture_is_forced_is_a_forced_track(tmp_path, film, kind):
    """A disc's forced-only track often carries no forced disposition, only each picture's own forced flag (a PGS
    composition object's, a DVD subtitle's forced start): such a track ranks after the full one, and a film whose
    only lines it gives is transcribed too, so the rest of its dialogue is not lost."""
    signs = with_picture_track(film, tmp_path / "signs.mkv", kind, [(1.0, 2.0, ["Stop right there."])],
                               language="eng", forced_pictures=True)
    alone = job(signs, transcribe="auto")
    assert [c.text for c in alone.cues] == ["Stop right there."] and alone.needs_asr
    full = with_picture_track(signs, tmp_path / "full.mkv", "pgs", [(3.0, 4.0, ["The full dialogue."])],
                              language="eng")
    both = job(full, transcribe="auto")
    assert [c.text for c in both.cues] == ["The full dialogue."] and not both.needs_asr
    sup = tmp_path / "sidecar" / "movie.en.sup"
    sup.parent.mkdir()
    (sup.parent / "movie.mp4").write_bytes(film.read_bytes())
    sup.write_bytes(sup_bytes([(1.0, 2.0, ["Stop right there."])], forced=True))
    beside = job(sup.parent / "movie.mp4", transcribe="auto")
    assert [c.text for c in beside.cues] == ["Stop right there."] and beside.needs_asr


def test_damaged_and_unreadable_pictures_are_left_out_and_counted(tmp_path, film):
    """A file cut off mid-picture (a download that stopped) keeps the pictures before the cut, with a warning; a
    picture whose run-length data is damaged does not stop the ones after it; a picture that holds no text (a
    drawing) is left out, counted; a picture shown again is read once."""
    data = sup_bytes(LINES)
    second = data.index(b"PG", data.index(b"\x80\x00\x00", data.index(b"\x15")) + 10)  # after the first line's clear
    ods = data.index(b"\x15", data.index(b"\x14", second))  # the second picture's object segment
    (tmp_path / "cut.sup").write_bytes(data[:ods + 40])
    texts, warnings, *_ = read_picture_subtitles(str(tmp_path / "cut.sup"), sidecar=True)[0]
    assert [t for *_, t in texts] == WANT[:1]
    (tmp_path / "torn.sup").write_bytes(data[:ods + 40] + data[ods + 400:])  # a stretch lost: the segments' framing
    texts, warnings, *_ = read_picture_subtitles(str(tmp_path / "torn.sup"), sidecar=True)[0]
    assert [t for *_, t in texts] == WANT[:1]
    assert len(warnings) == 1 and "the pictures stop at 1.00s: the file cannot be read further" in warnings[0]
    garbled = bytearray(data)
    garbled[ods + 20:ods + 600] = bytes(range(256)) * 2 + bytes(68)  # the second picture's pixels garbled
    (tmp_path / "garbled.sup").write_bytes(bytes(garbled))
    texts, warnings, *_ = read_picture_subtitles(str(tmp_path / "garbled.sup"), sidecar=True)[0]
    assert [t for *_, t in texts][0] == WANT[0] and [t for *_, t in texts][-1] == WANT[2]

    rng = np.random.default_rng(0)
    blobs = rng.integers(0, 2, (60, 200)).astype(np.uint8) * 15  # noise in the text's brightest shade
    from testing import picture_subs
    drawing = picture_subs.display_set(0, 0, blobs) + picture_subs.display_set(90000, 1, None)
    (tmp_path / "drawing.sup").write_bytes(drawing + sup_bytes([LINES[0]]))
    events, warnings, *_ = read_picture_subtitles(str(tmp_path / "drawing.sup"), sidecar=True)[0]
    assert [t for *_, t in events] == [WANT[0]]
    assert warnings == ["stream 0: 1 subtitle picture(s) gave no text OCR could trust (none read, or read with "
                        "confidence under 0.5): left out"]

    class Counting:
        calls = 0

        def read(self, grey):
            Counting.calls += 1
            return "Again.", 0.9
    again = sup_bytes([(1.0, 2.0, ["Again."]), (2.0, 3.0, ["Again."])])
    (tmp_path / "again.sup").write_bytes(again)
    events, *_ = read_picture_subtitles(str(tmp_path / "again.sup"), sidecar=True, reader_factory=Counting)[0]
    assert Counting.calls == 1 and len(events) == 2


def test_a_subtitle_fading_out_is_one_line(tmp_path, film):
    """A Blu-ray subtitle that fades (display sets that change only its palette's opacity) is read at full contrast
    each time and stays one line from its start to the empty screen."""
    from testing.picture_subs import display_set, palette_update
    picture = render_lines(["Goodbye, my friend."])
    place = ((1280 - picture.shape[1]) // 2, 720 - 60 - picture.shape[0])
    movie = tmp_path / "movie.mp4"
    movie.write_bytes(film.read_bytes())
    (tmp_path / "movie.sup").write_bytes(display_set(90000, 0, picture) + palette_update(180000, 1, 0.5, place)
                                         + palette_update(198000, 2, 0.15, place) + display_set(225000, 3, None))
    assert [(c.start_s, c.end_s, c.text) for c in job(movie).cues] == [(1.0, 2.5, "Goodbye, my friend.")]


def test_a_dvb_picture_without_its_colour_table_is_read_by_touch(tmp_path):
    """A DVB stream that leaves a region's colour table to the decoder's default: the text is the pixel code that
    touches the transparent ground least (the outline wraps it), as for a DVD subtitle without its palette; a
    page that times out ends its picture there."""
    from testing.picture_subs import write_dvb
    path = write_dvb(tmp_path / "news.mkv", [(1.0, 3.0, ["Good evening."]), (5.0, 6.0, ["Two lines", "of news."])],
                     clut=False, size=28)
    events, warnings, *_ = read_picture_subtitles(str(path), sidecar=True)[0]
    assert [t for *_, t in events] == ["Good evening.", "Two lines of news."] and not warnings
    assert [(s, e) for s, e, _ in events] == [(1.0, 3.0), (5.0, 6.0)]


def test_a_picture_left_on_screen_is_held_at_most_ten_seconds(tmp_path):
    """A PGS picture that no empty display set takes off (a missing clear) ends at the next picture, or after
    MAX_HOLD_S at the end of the stream, with a warning."""
    from testing.picture_subs import display_set
    data = display_set(90000, 0, render_lines(["Still here."])) + display_set(30 * 90000, 1, render_lines(["Next."]))
    (tmp_path / "held.sup").write_bytes(data)
    events, warnings, *_ = picture_events(str(tmp_path / "held.sup"), sidecar=True)[0]
    assert [(s, e) for s, e, _ in events] == [(1.0, 11.0), (30.0, 40.0)]
    assert "2 picture(s) left on screen over 10 s" in warnings[0]


def test_a_rip_with_picture_subtitles_through_the_pipeline(tmp_path, film):
    """pipeline.run over a Blu-ray rip whose only subtitles are a PGS track: its clips carry the lines the
    pictures show (text_source subtitle), and the errors table says they were read by OCR (not fatal)."""
    (tmp_path / "archive").mkdir()
    with_picture_track(film, tmp_path / "archive" / "rip.mkv", "pgs", LINES, language="eng")
    out = tmp_path / "out"
    summary = run(["--input", str(tmp_path / "archive"), "--output", str(out), "--segment", "subtitle"] + BASE)
    assert summary["ok"] == 1
    said = [(r["text"], r["text_source"]) for r in table(out, "clips") if r["text"]]
    assert said == [(t, "subtitle") for t in WANT]
    rows = [(e["error_type"], e["fatal"]) for e in table(out, "errors")]
    assert rows == [("PictureSubtitles", False)]


def test_load_cues_names_the_picture_source(tmp_path, film):
    rip = with_picture_track(film, tmp_path / "rip.mkv", "dvd", LINES[:1], language="eng")
    ref = FilmRef(str(rip), rip.stat().st_size, film_id_for(str(rip)), "fp")
    cues, warnings, source = load_cues(ref, probe_film(str(rip)))
    assert source == "picture:2" and [c.text for c in cues] == WANT[:1] and not warnings


def test_picture_subtitles_benchmark_prints_its_table(tmp_path, capsys):
    """The benchmark reads MELD dev lines back from drawn PGS and VobSub pictures and prints its error rates."""
    from benchmarks.picture_subtitles import main
    result = main(["--lines", "12", "--styles", "pgs-sans,dvd-sans", "--json", str(tmp_path / "r.json")])
    printed = capsys.readouterr().out
    assert "pgs-sans" in printed and "dvd-sans" in printed and "pictures/s" in printed
    for style in ("pgs-sans", "dvd-sans"):
        got = result["styles"][style]
        assert got["lines"] == 12 and got["left_out"] == 0 and got["cer"] < 0.02
    assert (tmp_path / "r.json").exists()


def test_sidecars_on_a_bucket_are_read_and_a_failing_storage_retries(tmp_path, film):
    """A VobSub .idx on another filesystem (a bucket: here flaky://, served through Beam's FileSystems as gs://
    is) is copied with its .sub to read it (FFmpeg opens the .sub by name); a storage that fails while a picture
    sidecar is read fails the film at `read` for the next run to retry, not a film without subtitles."""
    from testing.flaky_fs import FAILING, PREFIX
    movie = tmp_path / "movie.mp4"
    movie.write_bytes(film.read_bytes())
    write_vobsub(tmp_path / "movie.idx", LINES[:2], language="en")
    found = read_picture_subtitles(PREFIX + str(tmp_path / "movie.idx"), sidecar=True)
    assert [t for *_, t in found[0].events] == WANT[:2] and found[0].language == "en"
    path = PREFIX + str(movie)
    ref = FilmRef(path, movie.stat().st_size, film_id_for(path), "fp")
    info = probe_film(path)
    got = list(LoadSubtitles("c").process((ref, info)))[-1]
    assert [c.text for c in got.cues] == WANT[:2]
    FAILING[str(tmp_path / "movie.sub")] = (0.0, 1.0)
    try:
        failed = list(LoadSubtitles("c").process((ref, info)))[-1]
    finally:
        FAILING.clear()
    assert [(e.stage, e.error_type) for e in failed.warnings] == [("read", "ReadFailed")]


def test_two_lines_set_too_close_to_part_are_read_as_two():
    """Lines whose descenders meet the next line's capitals leave no empty row between them: a band read with low
    confidence whose middle third holds the least ink is cut there and read as two lines; a single line (its
    x-height holds its most ink) is never cut."""
    from PIL import Image, ImageDraw

    from model.ocr import LineReader, line_pictures, split_line
    from testing.picture_subs import font
    face = font(size=42)
    asc, desc = face.getmetrics()

    def drawn(lines, lead):
        img = Image.new("L", (max(int(face.getlength(t)) for t in lines) + 20, (asc + desc + lead) * len(lines) + 20))
        for i, text in enumerate(lines):
            ImageDraw.Draw(img).text((10, 10 + i * (asc + desc + lead)), text, font=face, fill=255)
        return np.asarray(img)
    tight = drawn(["Get your gun, Jay.", "Quickly, go!"], -10)
    assert len(line_pictures(tight)) == 1  # no empty row parts them
    assert LineReader.load().read(tight)[0].startswith("Get your gun, Jay. Quickly, go!")
    for single in (["What?!"], ["jump"], ["Tight spot, eh?"]):
        assert split_line(line_pictures(drawn(single, 0))[0]) == []


def test_a_picture_named_as_a_uri_beside_its_document_is_found(tmp_path):
    """An Interop DCP's `<Image>` or a TTML sidecar's backgroundImage may write the file name as a URI
    ("line%20001.png" for "line 001.png"), as asset maps write paths: it is read as written, then percent-decoded
    (before 2026-12-06 such a picture was a lost line)."""
    from transforms.image_subtitles import SubtitlePictures
    (tmp_path / "line 001.png").write_bytes(b"\x89PNG one")
    (tmp_path / "100%.png").write_bytes(b"\x89PNG literal")
    pictures = SubtitlePictures.beside(str(tmp_path / "subs.xml"))
    assert pictures.fetch("line%20001.png") == b"\x89PNG one" and pictures.fetch("line 001.png") == b"\x89PNG one"
    assert pictures.fetch("100%.png") == b"\x89PNG literal"  # a name with a bare % is read as written
    with pytest.raises(Exception):
        pictures.fetch("missing%20file.png")
