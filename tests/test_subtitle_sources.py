"""Which subtitle source a film reads, and on which clock: a master's timecode, sidecars of the films beside it,
forced tracks against the full dialogue, timecode-labelled formats (SCC, TTML's smpte time base)."""
import dataclasses
from pathlib import Path

import av
import pytest

from testing import captions as cc
from testing.films import LINES, make_film, write_srt
from transforms.discover import film_id_for
from transforms.elements import FilmRef
from transforms.probe import probe_film
from transforms.scc import FRAME_S
from transforms.subtitles import LoadSubtitles, find_sidecars, is_forced, load_cues


def _ref(film: Path) -> FilmRef:
    return FilmRef(str(film), film.stat().st_size, film_id_for(str(film)), "fp")


def _job(film: Path, transcribe: str = "never"):
    return next(iter(LoadSubtitles("c", transcribe=transcribe, text_languages=("en",)).process(
        (_ref(film), probe_film(str(film))))))


def _starts(cues) -> list[float]:
    return [round(c.start_s, 2) for c in cues]


def test_a_feature_length_master_timed_on_its_timecode_is_moved_back(tmp_path):
    """A 90-minute master whose first frame is 01:00:00:00, its lines on that clock (01:00:05 to 02:20:05): every
    line moves back by the hour, though the later half of them fall within the film's 90 minutes as they come.
    Before 2026-12-06 nothing moved: every line an hour late, without a word. Lines timed from 0 on the same master
    stay as they are; so for a 30-minute and a 3-hour master, and a 10:00:00:00 one."""
    film = make_film(tmp_path / "feature.mov", duration_s=5400.0, fps=1, size=(16, 16), audio=False,
                     timecode="01:00:00:00")
    info = probe_film(str(film))
    assert info.start_timecode_s == 3600.0
    on_master = [(3600 + 60 * m + 5, 3600 + 60 * m + 8, f"Line at minute {m}.") for m in range(0, 90, 10)]
    write_srt(tmp_path / "feature.en.srt", on_master)
    job = _job(film)
    assert _starts(job.cues) == [60 * m + 5 for m in range(0, 90, 10)]
    assert any("moved back by 01:00:00" in w.message for w in job.warnings)
    from_zero = [(60 * m + 5, 60 * m + 8, f"Line at minute {m}.") for m in range(0, 90, 10)]
    write_srt(tmp_path / "feature.en.srt", from_zero)
    job = _job(film)
    assert _starts(job.cues) == [60 * m + 5 for m in range(0, 90, 10)] and not job.warnings
    # other lengths of master, read through the same path
    for minutes, start in ((30, 3600.0), (180, 3600.0), (180, 36000.0)):
        length = dataclasses.replace(info, duration_s=60.0 * minutes, start_timecode_s=start)
        lines = [(60 * m + 5, 60 * m + 8, f"Line at minute {m}.") for m in range(0, minutes, 10)]
        write_srt(tmp_path / "feature.en.srt", [(a + start, b + start, t) for a, b, t in lines])
        cues, warnings, _ = load_cues(_ref(film), length)
        assert _starts(cues) == [a for a, _, _ in lines] and "moved back" in warnings[0], (minutes, start)
        write_srt(tmp_path / "feature.en.srt", lines)
        cues, warnings, _ = load_cues(_ref(film), length)
        assert _starts(cues) == [a for a, _, _ in lines] and not warnings, (minutes, start)


def test_lines_in_whole_hours_move_back_only_when_they_run_past_the_films_end(tmp_path):
    """A master's transcode that lost its timecode track: lines from 01:00:05 that run past the film's end move
    back by the whole hour, though some fall within it (before 2026-12-06 they stayed an hour late). A forced
    track timed from 0 whose first line comes after the first hour (a foreign exchange 1h 20 in) is left alone."""
    film = make_film(tmp_path / "transcode.mp4", duration_s=5400.0, fps=1, size=(16, 16), audio=False)
    info = probe_film(str(film))
    assert info.start_timecode_s == 0.0
    write_srt(tmp_path / "transcode.srt", [(3600 + 60 * m + 5, 3600 + 60 * m + 8, f"Line {m}.")
                                           for m in range(0, 90, 10)])
    cues, warnings, _ = load_cues(_ref(film), info)
    assert _starts(cues) == [60 * m + 5 for m in range(0, 90, 10)] and "moved back by 01:00:00" in warnings[0]
    write_srt(tmp_path / "transcode.srt", [(4800.0, 4802.0, "Put the gun down."), (4810.0, 4812.0, "Now.")])
    cues, warnings, _ = load_cues(_ref(film), info)
    assert _starts(cues) == [4800.0, 4810.0] and not warnings


def test_a_sidecar_named_for_a_longer_named_film_beside_it_is_that_films(tmp_path):
    """Film.trailer.en.srt is the subtitles of Film.trailer.mp4, not of Film.mp4 beside it; Alien.Resurrection.srt
    those of Alien.Resurrection.mp4, not of Alien.mp4 (before 2026-12-06 each film read the other's lines). A
    sidecar whose extra name is a language or qualifier tag stays the film's; and without the longer-named film
    the file is the film's as before."""
    for name in ("Film", "Film.trailer", "Alien", "Alien.Resurrection"):
        make_film(tmp_path / f"{name}.mp4", duration_s=4.0, audio=False)
    write_srt(tmp_path / "Film.trailer.en.srt", [(1.0, 3.0, "This summer, one man will change everything.")])
    write_srt(tmp_path / "Alien.Resurrection.srt", [(1.0, 3.0, "Who do I have to kill to get out of here?")])
    assert find_sidecars(str(tmp_path / "Film.mp4")) == [] and find_sidecars(str(tmp_path / "Alien.mp4")) == []
    assert _job(tmp_path / "Film.mp4").cues == () and _job(tmp_path / "Alien.mp4").cues == ()
    trailer = _job(tmp_path / "Film.trailer.mp4").cues
    assert [c.text for c in trailer] == ["This summer, one man will change everything."]
    assert [Path(p).name for p in find_sidecars(str(tmp_path / "Alien.Resurrection.mp4"))] == ["Alien.Resurrection.srt"]
    for tag in ("en", "sdh", "forced", "en-US"):
        write_srt(tmp_path / f"Film.{tag}.srt", [(1.0, 2.0, "Hello.")])
    assert sorted(Path(p).name for p in find_sidecars(str(tmp_path / "Film.mp4"))) == [
        "Film.en-US.srt", "Film.en.srt", "Film.forced.srt", "Film.sdh.srt"]
    (tmp_path / "Alien.Resurrection.mp4").unlink()
    assert [Path(p).name for p in find_sidecars(str(tmp_path / "Alien.mp4"))] == ["Alien.Resurrection.srt"]


def test_a_sidecar_stored_in_the_other_unicode_form_is_its_films(tmp_path):
    """A macOS copy stores 'Amélie.en.srt' decomposed (NFD) beside 'Amélie.mp4' stored composed (NFC), or the other
    way round: before 2026-12-07 the film was scored without its lines and nothing said so (found in review). A film
    whose name only starts with another form of the same letters is not matched."""
    import unicodedata
    for film_form, srt_form in (("NFC", "NFD"), ("NFD", "NFC")):
        folder = tmp_path / film_form
        film = make_film(folder / unicodedata.normalize(film_form, "Amélie.mp4"), duration_s=4.0, audio=False)
        write_srt(folder / unicodedata.normalize(srt_form, "Amélie.en.srt"), [(1.0, 3.0, "Je t'aime.")])
        write_srt(folder / unicodedata.normalize(srt_form, "Amélie2.srt"), [(1.0, 3.0, "Not hers.")])
        assert [unicodedata.normalize("NFC", Path(p).name) for p in find_sidecars(str(film))] == ["Amélie.en.srt"]
        assert [c.text for c in _job(film).cues] == ["Je t'aime."]


FULL = [(1.0 + 2 * i, 2.5 + 2 * i, LINES[i]) for i in range(5)]


def test_a_forced_sidecar_waits_for_the_films_own_full_track(tmp_path):
    """film.en.forced.srt (the lines where the film leaves English) beside an mkv that carries the full English
    track: the track is the dialogue, and the film is not transcribed. Before 2026-12-06 every sidecar came before
    every embedded track, forced or not, and the film's dialogue was one line. Without the track, the forced lines
    are read, and the speech transcribed for the rest."""
    film = make_film(tmp_path / "film.mkv", duration_s=12.0, subtitles=FULL)
    write_srt(tmp_path / "film.en.forced.srt", [(9.0, 10.5, "[in Russian] Put the gun down, now.")])
    cues, _, source = load_cues(_ref(film), probe_film(str(film)), text_languages=("en",))
    assert source.startswith("stream:") and [c.text for c in cues] == [t for _, _, t in FULL]
    job = _job(film, transcribe="auto")
    assert [c.text for c in job.cues] == [t for _, _, t in FULL] and not job.needs_asr
    alone = make_film(tmp_path / "alone.mkv", duration_s=12.0)
    write_srt(tmp_path / "alone.en.forced.srt", [(9.0, 10.5, "Put the gun down, now.")])
    job = _job(alone, transcribe="auto")
    assert [c.text for c in job.cues] == ["Put the gun down, now."] and job.needs_asr


def test_a_track_titled_forced_is_a_forced_track(tmp_path):
    """Remuxers mark a forced-only track by its title ("English (Forced)") and often leave the disposition unset:
    such a track is forced, and the full English track after it is the dialogue (before 2026-12-06 the titled track
    came first, its one line the film's dialogue)."""
    made = make_film(tmp_path / "made.mkv", duration_s=12.0,
                     subtitles={"eng": [(9.0, 10.5, "Put the gun down, now.")], "en": FULL})
    film = tmp_path / "remux.mkv"
    with av.open(str(made)) as src, av.open(str(film), "w") as dst:
        out, titles = {}, iter(["English (Forced)", "English (Full)"])
        for s in src.streams:
            out[s.index] = dst.add_stream_from_template(s)
            if s.type == "subtitle":
                out[s.index].metadata["language"] = "eng"
                out[s.index].metadata["title"] = next(titles)
        for packet in src.demux():
            if packet.dts is None and packet.pts is None:
                continue
            packet.stream = out[packet.stream.index]
            dst.mux(packet)
    info = probe_film(str(film))
    assert info.forced_subtitle_streams == info.subtitle_streams[:1]
    cues, _, source = load_cues(_ref(film), info, text_languages=("en",))
    assert [c.text for c in cues] == [t for _, _, t in FULL] and not is_forced(source, str(film), info)
    assert not _job(film, transcribe="auto").needs_asr


def _retitled(made: Path, film: Path, tracks: list[dict]) -> Path:
    """A copy of `made` whose subtitle tracks, in order, get the metadata and disposition of `tracks`."""
    with av.open(str(made)) as src, av.open(str(film), "w") as dst:
        out, given = {}, iter(tracks)
        for s in src.streams:
            out[s.index] = dst.add_stream_from_template(s)
            if s.type == "subtitle":
                track = next(given)
                out[s.index].metadata.update(track.get("metadata", {}))
                out[s.index].disposition = track.get("disposition", 0)
        for packet in src.demux():
            if packet.dts is None and packet.pts is None:
                continue
            packet.stream = out[packet.stream.index]
            dst.mux(packet)
    return film


COMMENTARY = [(1.0, 3.0, "We shot this scene on the very last day.")]


def test_a_commentary_track_is_not_the_films_dialogue_and_a_plain_track_comes_before_its_sdh(tmp_path):
    """Found in review (2026-12-07): an English track titled "Commentary" (or flagged so) first was read as the
    film's lines; an SDH track first beat the plain one of its language; sidecars spelled eng-forced, en_forced or
    '(Forced)' were read as the whole dialogue, Film.en.sdh.srt beat Film.en.srt by name, Film.sdh.srt ranked as
    another language than English, and Film.French.srt tagged no line."""
    made = make_film(tmp_path / "made.mkv", duration_s=12.0, subtitles={"eng": COMMENTARY, "en": FULL})
    for first in ({"metadata": {"language": "eng", "title": "Director's Commentary"}},
                  {"metadata": {"language": "eng"}, "disposition": int(av.stream.Disposition.comment)}):
        film = _retitled(made, tmp_path / "commentary.mkv", [first, {"metadata": {"language": "eng"}}])
        info = probe_film(str(film))
        assert len(info.subtitle_streams) == 1  # the commentary is not a subtitle source
        assert [c.text for c in load_cues(_ref(film), info, text_languages=("en",))[0]] == [t for _, _, t in FULL]
    sdh = [(1.0, 3.0, "[door slams] JOHN: Where were you?")]
    made = make_film(tmp_path / "made2.mkv", duration_s=12.0, subtitles={"eng": sdh, "en": FULL})
    film = _retitled(made, tmp_path / "sdh.mkv", [
        {"metadata": {"language": "eng", "title": "English SDH"},
         "disposition": int(av.stream.Disposition.hearing_impaired)},
        {"metadata": {"language": "eng", "title": "English"}, "disposition": int(av.stream.Disposition.default)}])
    info = probe_film(str(film))
    assert info.sdh_subtitle_streams == info.subtitle_streams[:1]
    assert [c.text for c in load_cues(_ref(film), info, text_languages=("en",))[0]] == [t for _, _, t in FULL]
    # sidecars
    side = tmp_path / "side"
    side.mkdir()
    for name in ("Film.en.srt", "Film.en.sdh.srt", "Film.fr.srt", "Film.eng-forced.srt", "Film.en_forced.srt",
                 "Film.English (Forced).srt", "Film.en.foreign.srt"):
        (side / name).write_text("")
    ranked = [Path(p).name for p in find_sidecars(str(side / "Film.mkv"))]
    assert ranked[:3] == ["Film.en.srt", "Film.en.sdh.srt", "Film.fr.srt"]
    assert set(ranked[3:]) == {"Film.eng-forced.srt", "Film.en_forced.srt", "Film.English (Forced).srt",
                               "Film.en.foreign.srt"}
    assert all(is_forced(str(side / n), str(side / "Film.mkv"), info) for n in ranked[3:])
    for name in ("Film.en.srt", "Film.en.sdh.srt"):
        (side / name).unlink()
    (side / "Film.sdh.srt").write_text("")
    assert [Path(p).name for p in find_sidecars(str(side / "Film.mkv"))][:2] == ["Film.sdh.srt", "Film.fr.srt"]
    from transforms.subtitles import sidecar_language
    assert sidecar_language(str(side / "Film.mkv"), str(side / "Film.French.srt")) == "fr"
    assert sidecar_language(str(side / "Film.mkv"), str(side / "Film.final.srt")) == "final"


SCC_LINE = "9420 9420 94ae 94ae 9452 9452 d7e8 e5f2 e520 f7e5 f2e5 20f9 eff5 bf80 942f 942f"  # "Where were you?"


@pytest.mark.parametrize("sep", [":", ";"])
def test_scc_captions_on_a_masters_timecode_land_on_the_films_clock(tmp_path, sep):
    """A master whose first frame is 01:00:00:00, its SCC captions labelled on that clock: a caption whose words
    start at 01:00:02:00 shows 2 s (plus its 14 words) into the film, and one at 01:00:10:00 10 s in, non-drop or
    drop-frame (the master's and the file's labels alike). Before 2026-12-06 non-drop labels came out 3.6 s late
    per hour of timecode (the file's labels read as 29.97 frames from 00:00:00:00, the film's start as seconds)."""
    film = make_film(tmp_path / "master.mov", duration_s=14.0, fps=30, audio=False, timecode=f"01:00:00{sep}00")
    (tmp_path / "master.scc").write_text(f"{cc.HEADER}\n\n01:00:02{sep}00\t{SCC_LINE}\n\n01:00:04{sep}00\t942c 942c\n\n"
                                         f"01:00:10{sep}00\t{SCC_LINE}\n\n01:00:12{sep}00\t942c 942c\n")
    cues, warnings, source = load_cues(_ref(film), probe_film(str(film)))
    assert source.endswith("master.scc") and [c.text for c in cues] == ["Where were you?"] * 2
    assert cues[0].start_s == pytest.approx(2.0 + 14 * FRAME_S, abs=0.02)
    assert cues[0].end_s == pytest.approx(4.0, abs=0.02)
    assert cues[1].start_s == pytest.approx(10.0 + 14 * FRAME_S, abs=0.03)
    # without the timecode track (a transcode), the whole hour of labels comes off the same way
    (tmp_path / "master.scc").rename(tmp_path / "plain.scc")
    plain = make_film(tmp_path / "plain.mp4", duration_s=14.0, fps=30, audio=False)
    cues, warnings, _ = load_cues(_ref(plain), probe_film(str(plain)))
    assert cues[0].start_s == pytest.approx(2.0 + 14 * FRAME_S, abs=0.02) and "moved back" in warnings[0]


def test_ttml_on_the_smpte_time_base_lands_on_the_films_clock(tmp_path):
    """TTML for a 23.976 fps master (smpte time base, 24 labels a second at 1000/1001, non-drop) whose first frame is
    01:00:00:00: a line at 01:00:02:00 is 2 s into the film (before 2026-12-06 5.6 s); a line timed a minute into
    the hour after it is a minute (and its 0.1 %) after that."""
    film = make_film(tmp_path / "master.mov", duration_s=80.0, fps=24, size=(16, 16), audio=False,
                     timecode="01:00:00:00")
    (tmp_path / "master.ttml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<tt xmlns="http://www.w3.org/ns/ttml" '
        'xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xml:lang="en" ttp:timeBase="smpte" ttp:frameRate="24" '
        'ttp:frameRateMultiplier="1000 1001"><body><div>'
        '<p begin="01:00:02:00" end="01:00:04:00">Where were you?</p>'
        '<p begin="01:01:02:00" end="01:01:04:00">At home.</p></div></body></tt>')
    cues, _, source = load_cues(_ref(film), probe_film(str(film)))
    assert source.endswith("master.ttml")
    assert [round(c.start_s, 3) for c in cues] == [2.002, 62.062]
