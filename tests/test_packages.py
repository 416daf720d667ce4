"""IMF and DCP packages: a title whose picture and sound lie in separate MXF track files, reel after reel, put in
order by a composition playlist, is scored as one film (transforms.imf)."""
import dataclasses
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline.run import expected_films, match_inputs, run
from testing.packages import make_package, picture_track, sound_track, write_package
from tests.test_decode import job_for
from tests.test_pipeline_media import BASE, table
from transforms import imf
from transforms.decode import DecodeConfig, DecodedClip, decode_clip, decode_film
from transforms.discover import (_titles, film_fingerprint, film_id_for, is_film_candidate, literal_glob,
                                 normalise_pattern, slug)
from transforms.elements import FilmError, FilmRef
from transforms.probe import ProbeFilm

RED, GREEN = (220, 30, 30), (30, 200, 40)


def tone(audio: np.ndarray) -> float:
    """The loudest frequency of 16 kHz audio."""
    return float(np.argmax(np.abs(np.fft.rfft(audio))) * 16000 / len(audio))


def colour(frame: np.ndarray) -> tuple:
    return tuple(int(c) for c in frame[frame.shape[0] // 2, frame.shape[1] // 2])


def near(got: tuple, want: tuple) -> bool:
    return max(abs(a - b) for a, b in zip(got, want)) < 12


def windows(cpl) -> list:
    return list(decode_film(job_for(cpl), DecodeConfig(segment="window", window_s=1.0, hop_s=1.0)))


@pytest.mark.parametrize("kind", ["imf", "dcp"])
def test_a_packages_reels_play_as_one_title_on_one_clock(tmp_path, kind):
    """Two reels, each a JPEG 2000 picture track file and a PCM sound track file: the composition is one film whose
    clips show reel 1's picture with reel 1's sound, then reel 2's with reel 2's, with no clock restart between
    (before 2026-12-05 each of the four files was a film of its own: pictures without sound, sounds without
    picture). The CPL's entry points cut the start of each reel (IMF: 12 frames; its sound in samples)."""
    entry = 12 if kind == "imf" else 0
    cpl = make_package(tmp_path / "Title_OV", kind=kind, reels=2, seconds_per_reel=3, entry=entry)
    reel_s = 3.0 - entry / 24
    out = windows(cpl)
    clips = [c for c in out if isinstance(c, DecodedClip)]
    assert not [e for e in out if isinstance(e, FilmError)]  # no TimestampReset, no hole, no early end
    assert clips[-1].spec.end_s == pytest.approx(2 * reel_s, abs=0.05)
    for c in clips:
        mid = (c.spec.start_s + c.spec.end_s) / 2
        first = c.frame_times[0] < reel_s
        assert near(colour(c.frames[0]), RED if first else GREEN), (c.spec, colour(c.frames[0]))
        if c.spec.end_s <= reel_s or c.spec.start_s >= reel_s:  # a clip within one reel hears that reel's tone
            assert tone(c.audio) == pytest.approx(300 if mid < reel_s else 500, abs=5)
        assert len(c.audio) == pytest.approx((c.spec.end_s - c.spec.start_s) * 16000, abs=400)


def test_a_clip_decoded_alone_in_a_later_reel_matches_the_whole_pass(tmp_path):
    """The report's thumbnails and --explain decode one clip (a seek into the composition): the same frame times,
    picture and sound as the pipeline's pass."""
    cpl = make_package(tmp_path / "T", kind="imf", reels=2, seconds_per_reel=3)
    whole = {c.spec.start_s: c for c in windows(cpl) if isinstance(c, DecodedClip)}
    for start in (1.0, 4.0):
        one = decode_clip(str(cpl), start, start + 1.0, DecodeConfig(segment="window", window_s=1.0, hop_s=1.0))
        assert list(one.frame_times) == list(whole[start].frame_times)
        assert colour(one.frames[0]) == colour(whole[start].frames[0])
        assert tone(one.audio) == pytest.approx(tone(whole[start].audio), abs=5)


def test_discovery_turns_a_package_into_its_titles(tmp_path):
    """Whatever the glob matches of a package (its asset map, its track files, both), the film is the composition:
    once, named by the package's folder, its fingerprint the CPL's and every track file's (a re-delivered reel
    redoes the title). A track file no CPL plays stays a film of its own."""
    pkg = tmp_path / "My Film [IMF]"
    cpl = make_package(pkg, kind="imf", reels=2, seconds_per_reel=1)
    (pkg / "PKL_1.xml").write_text("<PackingList/>")
    extra = picture_track(pkg / "trailer.mxf", [RED])  # in the folder, played by no CPL
    folder = literal_glob(str(pkg))  # (the brackets of a release name, taken literally)
    for pattern in (str(pkg), f"{folder}/*.mxf", f"{folder}/ASSETMAP.xml"):  # as the pipeline's discovery finds them
        matched = FileSystems.match([normalise_pattern(pattern)])[0].metadata_list
        films = {p for m in matched if is_film_candidate(m.path) or imf.is_asset_map(m.path)
                 for p, _ in _titles((m.path.encode(), m.size_in_bytes))}
        want = {str(cpl).encode()} | ({str(extra).encode()} if not pattern.endswith("ASSETMAP.xml") else set())
        assert films == want, pattern
    # the launcher, from its listing alone (no request for each MXF), counts the same films
    assert sorted(expected_films(match_inputs([str(pkg)]), {}, "h")) == sorted([str(cpl), str(extra)])
    assert film_id_for(str(cpl)).startswith("my-film-imf-")
    before = film_fingerprint(str(cpl))
    picture_track(pkg / "reel2_picture.mxf", [GREEN, RED])  # reel 2 delivered again, changed
    assert film_fingerprint(str(cpl)) != before
    assert imf.titles_of(str(tmp_path / "elsewhere.mxf")) is None  # no asset map: not in a package


def test_a_composition_that_cannot_be_read_fails_once_with_its_reason(tmp_path):
    """An encrypted DCP, a supplemental package whose CPL plays a track file listed in another package, a track file
    the asset map lists but that is not there: the title fails at probe with the reason; its track files are not
    scored one by one."""
    def probe(cpl):
        ref = FilmRef(str(cpl), Path(cpl).stat().st_size, film_id_for(str(cpl)), "fp")
        return [getattr(o, "value", o) for o in ProbeFilm().process(ref)]

    enc = make_package(tmp_path / "enc", kind="dcp", reels=1, seconds_per_reel=1, encrypted=True)
    (tmp_path / "sup").mkdir()
    pic, snd = picture_track(tmp_path / "sup" / "p.mxf", [RED]), sound_track(tmp_path / "sup" / "s.mxf", 1.0)
    sup = write_package(tmp_path / "sup", [{"picture": pic, "sound": snd, "frames": 24}], missing=["s.mxf"])
    gone = make_package(tmp_path / "gone", kind="imf", reels=1, seconds_per_reel=1)
    (tmp_path / "gone" / "reel1_sound.mxf").unlink()
    for cpl, words in ((enc, "encrypted"), (sup, "nor those of the packages beside it"), (gone, "is not there")):
        (err,) = probe(cpl)
        assert isinstance(err, FilmError) and err.stage == "probe" and err.fatal and words in err.message, err
    assert [m.path for ms in match_inputs([str(tmp_path / "enc")]).values() for m in ms] == [str(enc)]


def test_a_package_run_scores_the_title_and_skips_it_next_night(tmp_path):
    """pipeline.run over an archive holding an IMF package and a DCP: two films, each one clip row per window with
    frames and sound, no PackageTrackFile row; the next run skips both."""
    make_package(tmp_path / "archive" / "Film_IMF", kind="imf", reels=2, seconds_per_reel=2)
    make_package(tmp_path / "archive" / "Film_DCP", kind="dcp", reels=2, seconds_per_reel=2)
    out, args = tmp_path / "out", ["--segment", "window", "--window_s", "1"] + BASE
    summary = run(["--input", str(tmp_path / "archive"), "--output", str(out)] + args)
    assert summary["ok"] == 2 and summary["failed"] == 0
    clips = table(out, "clips")
    assert {Path(r["film_path"]).suffix for r in clips} == {".xml"} and len(clips) == 8
    assert all(r["n_frames"] > 0 and r["has_audio"] for r in clips)
    assert not [e for e in table(out, "errors") if e["error_type"] == "PackageTrackFile"]
    assert run(["--input", str(tmp_path / "archive"), "--output", str(out)] + args)["skipped"] == 2
    again = run(["--input", f"{tmp_path / 'archive'}/**/*.mxf", "--output", str(out)] + args)  # the track files
    assert again["skipped"] == 2 and again["ok"] == 0 and not again.get("gone")


@pytest.mark.parametrize("kind,subtitles", [("imf", "imsc"), ("imf", "imsc-png"), ("dcp", "smpte"),
                                            ("dcp", "smpte-png"), ("dcp", "interop"), ("dcp", "interop-png")])
def test_a_packages_subtitle_track_files_are_its_dialogue(tmp_path, kind, subtitles):
    """The subtitles a package carries (IMSC1 TTML in an IMF track file, a SMPTE DCP's subtitle XML in MXF, an
    Interop DCP's XML file) are the title's lines, also where each line is a PNG picture read by OCR (IMSC1's image
    profile and a SMPTE DCP: pictures the track file carries, named by UUID; Interop: files beside it): each track file is
    timed from its own start, so a reel's lines
    move to where the reel plays and a line before the CPL's entry point is not the title's. The clips read them
    (text_source subtitle), no speech recognition needed."""
    entry = 12 if kind == "imf" else 0  # half a second cut from each reel
    cpl = make_package(tmp_path / "pkg", kind=kind, reels=2, seconds_per_reel=3, entry=entry, subtitles=subtitles)
    reel_s, cut = 3.0 - entry / 24, entry / 24
    job = job_for(cpl)
    want = [(1.0 - cut, 2.0 - cut, "We have to go now."),
            (reel_s + 1.0 - cut, reel_s + 2.0 - cut, "Where is everyone?")]
    if not entry:
        interop = subtitles.startswith("interop")
        want.insert(0, (0.1 if interop else 2 / 24, 0.4 if interop else 10 / 24, "Cut by the entry point."))
    assert [(round(c.start_s, 3), round(c.end_s, 3), c.text) for c in job.cues] == [
        (round(s, 3), round(e, 3), t) for s, e, t in want]
    assert {c.language for c in job.cues} == {"en"}
    out = tmp_path / "out"
    assert run(["--input", str(tmp_path / "pkg"), "--output", str(out), "--transcribe", "auto", "--no_score",
                "--image_size", "32"])["ok"] == 1
    said = [(r["text"], r["text_source"]) for r in table(out, "clips") if r["text"]]
    assert said == [(t, "subtitle") for *_, t in want]


def test_a_supplemental_package_plays_its_original_versions_track_files(tmp_path):
    """An IMF supplemental package (a French dub) delivers only what differs: its CPL plays the original version's
    picture, found through the OV's asset map in the folder beside it, with its own sound. Its fingerprint holds the
    OV's picture too."""
    ov = make_package(tmp_path / "Title_OV", kind="imf", reels=1, seconds_per_reel=2)
    ov_ids = {Path(p).name: uid for uid, p in imf.read_asset_map(str(ov.parent / "ASSETMAP.xml")).items()}
    (tmp_path / "Title_SUPP_FR").mkdir()
    dub = sound_track(tmp_path / "Title_SUPP_FR" / "fr.mxf", 2.0, freq=700.0)
    supp = write_package(tmp_path / "Title_SUPP_FR", [{"picture": ov.parent / "reel1_picture.mxf", "sound": dub,
                                                       "frames": 48}], missing=["reel1_picture.mxf"], ids=ov_ids)
    comp = imf.read_composition(str(supp))
    assert comp.track_files == sorted([str(ov.parent / "reel1_picture.mxf"), str(dub)])
    clips = [c for c in windows(supp) if isinstance(c, DecodedClip)]
    assert len(clips) == 2 and all(near(colour(c.frames[0]), RED) and tone(c.audio) == pytest.approx(700, abs=5)
                                   for c in clips)
    films = sorted(m.path for ms in match_inputs([str(tmp_path)]).values() for m in ms)
    assert films == sorted([str(ov), str(supp)])  # the OV's picture is the OV's title's, not a film of its own


def test_a_jpeg2000_picture_is_decoded_at_a_reduced_size_the_models_never_miss(tmp_path):
    """JPEG 2000 decodes at half or a quarter of its size (FFmpeg's lowres: 2-4 times faster at 1080p) where that is
    still twice every copy the models read; the clips keep their frame times and nearly their pixels.
    --decode_full_size decodes it whole. The rule: the most halvings that keep LOWRES_MARGIN x each copy."""
    from transforms.decode import FramePicker, frame_size, reduced_resolution
    from transforms.elements import FilmInfo
    cfg = DecodeConfig()

    def level(w, h, codec="jpeg2000"):
        info = FilmInfo(1.0, w, h, 24.0, codec, None, True, False)
        picker = FramePicker(*frame_size(info, cfg), face_size=frame_size(info, cfg, cfg.face_width)[:2])
        return reduced_resolution(codec, info, picker)
    assert [level(1920, 1080), level(3840, 2160), level(4096, 1716), level(1280, 720)] == [1, 2, 1, 0]
    assert level(3840, 2160, codec="prores") == 0

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pic = picture_track(pkg / "p.mxf", [RED, GREEN], size=(640, 360))
    cpl = write_package(pkg, [{"picture": pic, "sound": sound_track(pkg / "s.mxf", 2.0), "frames": 48}])
    small = DecodeConfig(segment="window", window_s=1.0, image_size=64, face_width=160)  # 640 wide: half is 2x 160
    got = {}
    for reduce in (True, False):
        stats = {}
        clips = [c for c in decode_film(job_for(cpl), dataclasses.replace(small, reduce_size=reduce), stats=stats)
                 if isinstance(c, DecodedClip)]
        got[reduce] = (clips, stats["reduced_by"])
    assert got[True][1] == 1 and got[False][1] == 0
    for a, b in zip(got[True][0], got[False][0]):
        assert list(a.frame_times) == list(b.frame_times) and a.frames.shape == b.frames.shape
        assert np.abs(a.frames.astype(int) - b.frames).mean() < 3
        assert np.abs(a.face_frames.astype(int) - b.face_frames).mean() < 3


def test_of_several_sound_sequences_the_one_with_the_dialogue_is_heard(tmp_path):
    """An IMF title may carry several sound sequences (a music-and-effects mix first, the dialogue mix after, dubs):
    the probe hears a few samples of each (Silero VAD) and the title is heard on the one with speech, as a master's
    channel tracks are; before, the first sequence (here the M&E: no line to transcribe, no voice)."""
    from testing.films import synthetic_music
    from transforms.decode import decode_audio
    from transforms.probe import probe_film
    jfk = Path(__file__).resolve().parents[2] / "shared" / "data" / "media" / "speech" / "jfk.flac"
    if not jfk.exists():
        pytest.skip("shared speech data absent")
    speech = decode_audio(str(jfk))[:8 * 16000]
    seconds = speech.size / 16000
    music = synthetic_music(seconds)[:speech.size]
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pic = picture_track(pkg / "p.mxf", [RED] * int(seconds))
    me = sound_track(pkg / "me.mxf", seconds, samples=np.repeat(music, 3))  # (16 kHz -> 48 kHz)
    dialogue = sound_track(pkg / "en.mxf", seconds, samples=np.repeat(speech, 3))
    frames = int(seconds) * 24
    cpl = write_package(pkg, [{"picture": pic, "sound": me, "more_sound": [dialogue], "frames": frames}])
    assert len(imf.read_composition(str(cpl)).sounds) == 2
    assert probe_film(str(cpl)).audio_stream == 2  # the picture, the M&E, the dialogue
    heard = np.concatenate([c.audio for c in windows(cpl) if isinstance(c, DecodedClip)])
    n = min(heard.size, speech.size)
    assert np.corrcoef(heard[:n], speech[:n])[0, 1] > 0.9


def test_a_broken_package_fails_alone_with_its_reason(tmp_path):
    """A CPL cut short (a copy in progress, a damaged file) beside a good package: the good title is scored; the
    broken one is a failed row that says its CPL is not readable XML, and its track files are scored on their own
    with a PackageTrackFile row each; the run's exit is not affected."""
    make_package(tmp_path / "archive" / "Good", kind="imf", reels=1, seconds_per_reel=2)
    bad = make_package(tmp_path / "archive" / "Bad", kind="imf", reels=1, seconds_per_reel=2)
    bad.write_text(bad.read_text()[:300])
    out = tmp_path / "out"
    summary = run(["--input", str(tmp_path / "archive"), "--output", str(out), "--segment", "window",
                   "--window_s", "1"] + BASE)
    failed = [e for e in table(out, "errors") if e["fatal"]]
    assert [(Path(e["film_path"]).name, e["stage"]) for e in failed] == [(bad.name, "fingerprint")]
    assert "not readable XML" in failed[0]["message"]
    assert summary["ok"] == 3 and summary["failed"] == 1  # the good title, the bad package's two track files
    alone = {Path(e["film_path"]).name for e in table(out, "errors") if e["error_type"] == "PackageTrackFile"}
    assert alone == {"reel1_picture.mxf", "reel1_sound.mxf"}


def test_an_interop_dcp_folder_is_one_title(tmp_path):
    """An Interop DCP: its asset map is ASSETMAP (no extension) beside a VOLINDEX file, and a tool wrote a track
    file's path percent-encoded (a space as %20). One title, no failed row for the volume index."""
    pkg = tmp_path / "Film_FTR_Interop"
    make_package(pkg, kind="dcp", reels=2, seconds_per_reel=3, subtitles="interop")
    (pkg / "reel2_sound.mxf").rename(pkg / "reel2 sound.mxf")
    text = (pkg / "ASSETMAP.xml").read_text().replace("<Path>reel2_sound.mxf</Path>", "<Path>reel2%20sound.mxf</Path>")
    (pkg / "ASSETMAP").write_text(text)
    (pkg / "ASSETMAP.xml").unlink()
    (pkg / "VOLINDEX").write_text('<?xml version="1.0"?><VolumeIndex><Index>1</Index></VolumeIndex>')
    out = tmp_path / "out"
    summary = run(["--input", str(pkg), "--output", str(out), "--segment", "window", "--window_s", "1"] + BASE)
    assert summary["ok"] == 1 and summary["failed"] == 0, table(out, "errors")
    said = {r["text"] for r in table(out, "clips") if r["text"]}
    assert said == {"Cut by the entry point.", "We have to go now.", "Where is everyone?"}
    assert len(table(out, "clips")) == 6 and all(r["has_audio"] for r in table(out, "clips"))


def test_of_two_dubs_the_first_is_heard(tmp_path):
    """Of an IMF title's sound sequences with speech, the first (the original language) is heard, not the one that
    happens to have the most speech in the samples (a dub); only a voiceless first sequence (an M&E) is passed over."""
    from transforms.decode import decode_audio
    from transforms.probe import probe_film
    jfk = Path(__file__).resolve().parents[2] / "shared" / "data" / "media" / "speech" / "jfk.flac"
    if not jfk.exists():
        pytest.skip("shared speech data absent")
    speech = decode_audio(str(jfk))[:8 * 16000]
    seconds = speech.size / 16000
    sparse = speech.copy()
    sparse[: int(speech.size * 0.6)] = 0  # less speech than the dub below
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pic = picture_track(pkg / "p.mxf", [RED] * int(seconds))
    original = sound_track(pkg / "en.mxf", seconds, samples=np.repeat(sparse, 3))
    dub = sound_track(pkg / "fr.mxf", seconds, samples=np.repeat(speech, 3))
    cpl = write_package(pkg, [{"picture": pic, "sound": original, "more_sound": [dub], "frames": int(seconds) * 24}])
    assert probe_film(str(cpl)).audio_stream is None  # the first sequence: main_audio_stream's own choice


def test_intra_masters_benchmark_prints_its_table(tmp_path, capsys):
    from benchmarks import intra_masters
    intra_masters.main(["--seconds", "1", "--size", "320x180", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| IMF") or line.startswith("| ProRes")]
    assert len(rows) == 9 and sum("| identical |" in r for r in rows) >= 4, out  # (320 px: never reduced)


def test_reels_of_another_essence_fail_the_title_with_the_reason(tmp_path):
    """One decoder reads a sequence's track files one after another: a reel of another codec (or a sound of another
    rate or channels) than the first's would be misread, so the title fails at probe naming the track file, not
    scored with garbled reels."""
    import av
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    with av.open(str(pkg / "p1.mxf"), "w", format="mxf") as out:  # reel 2 in MPEG-2, reel 1 in JPEG 2000
        s = out.add_stream("mpeg2video", rate=24)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for _ in range(24):
            out.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((64, 96, 3), np.uint8), format="rgb24")))
        out.mux(s.encode())
    reels = [{"picture": picture_track(pkg / "p0.mxf", [RED]) if i == 0 else pkg / "p1.mxf", "frames": 24,
              "sound": sound_track(pkg / f"s{i}.mxf", 1.0)} for i in range(2)]
    cpl = write_package(pkg, reels, kind="dcp")
    ref = FilmRef(str(cpl), cpl.stat().st_size, film_id_for(str(cpl)), "fp")
    (err,) = [getattr(o, "value", o) for o in ProbeFilm().process(ref)]
    assert isinstance(err, FilmError) and err.stage == "probe" and "p1.mxf holds mpeg2video" in err.message


def reel2_damaged(folder: Path, kind: str, track: str, damage) -> tuple[Path, list, list]:
    """A three-reel package whose reel 2 `track` file ('picture', 'sound') is damaged by damage(bytes) -> bytes:
    (its CPL, the clips, the rows of its decode)."""
    cpl = make_package(folder, kind=kind, reels=3, seconds_per_reel=2)
    track_file = folder / f"reel2_{track}.mxf"
    track_file.write_bytes(damage(track_file.read_bytes()))
    out = windows(cpl)
    return cpl, [c for c in out if isinstance(c, DecodedClip)], [e for e in out if isinstance(e, FilmError)]


def test_a_damaged_reel_costs_its_own_stretch_not_the_title(tmp_path):
    """Reel 2 of 3: its picture track file with bytes repeated (FFmpeg cannot open it), its sound track file's start
    overwritten, or its picture track file cut short. The title is read without that stretch: a TrackFileUnreadable
    row names the file and the stretch, and the clips there are marked damaged; the other reels are read as before.
    Before 2026-12-06 the first two failed the whole title at probe ('not a readable media file')."""
    from testing.films import damaged_bytes
    _, clips, rows = reel2_damaged(tmp_path / "header", "dcp", "picture",
                                   lambda b: damaged_bytes(b, "bytes_repeated", np.random.default_rng(1)))
    assert [(e.error_type, e.fatal) for e in rows] == [("TrackFileUnreadable", False)]
    assert rows[0].message.startswith("reel2_picture.mxf could not be read (") and "picture from 2.00s to 4.00s" in \
        rows[0].message
    assert len(clips) == 6 and [c.damaged for c in clips] == [()] * 2 + [("video",)] * 2 + [()] * 2
    assert all(near(colour(c.frames[0]), RED) for c in clips[:2]) and all(
        near(colour(c.frames[0]), (40, 60, 220)) for c in clips[4:])  # reel 3's picture where it plays
    assert [round(tone(c.audio)) for c in clips] == [300, 300, 500, 500, 700, 700]  # every reel's sound

    _, clips, rows = reel2_damaged(tmp_path / "cut", "imf", "sound",
                                   lambda b: damaged_bytes(b, "start_overwritten", np.random.default_rng(0)))
    assert [e.error_type for e in rows] == ["TrackFileUnreadable"] and "the title's sound from" in rows[0].message
    assert len(clips) == 6 and clips[0].damaged == clips[1].damaged == clips[4].damaged == clips[5].damaged == ()
    assert "audio" in clips[3].damaged and all(near(colour(c.frames[0]), GREEN) for c in clips[2:4])

    # a track file cut short: what it holds is read, the rest of its stretch is missing (before: a silent hole)
    cpl, clips, rows = reel2_damaged(tmp_path / "short", "dcp", "picture", lambda b: b[: len(b) // 2])
    assert [e.error_type for e in rows] == ["TrackFileUnreadable"] and "cut short?" in rows[0].message
    assert [c.damaged for c in clips] == [()] * 2 + [("video",)] * 2 + [()] * 2

    # nothing of the title reads: it fails, with the first track file's reason
    for mxf in (tmp_path / "short").glob("reel*.mxf"):
        mxf.write_bytes(b"\0" * 1000)
    ref = FilmRef(str(cpl), Path(cpl).stat().st_size, film_id_for(str(cpl)), "fp")
    (err,) = [getattr(o, "value", o) for o in ProbeFilm().process(ref)]
    assert isinstance(err, FilmError) and err.stage == "probe" and err.fatal, err


def test_a_subtitle_track_file_scored_alone_says_what_it_is(tmp_path):
    """A package whose CPL is damaged: its track files are scored alone, the subtitle track file too. FFmpeg cannot
    open it (no picture or sound); the row says it is a timed-text track file, not a damaged one (before
    2026-12-06: 'not a readable media file (truncated, damaged, or not audio/video at all)')."""
    make_package(tmp_path / "p", kind="imf", reels=1, seconds_per_reel=1, subtitles="imsc")
    sub = tmp_path / "p" / "reel1_subtitles_en.mxf"
    ref = FilmRef(str(sub), sub.stat().st_size, film_id_for(str(sub)), "fp")
    (err,) = [getattr(o, "value", o) for o in ProbeFilm().process(ref)]
    assert isinstance(err, FilmError) and err.stage == "probe" and "timed-text (subtitle) track file" in err.message
    assert "truncated, damaged" not in err.message


def discovered(pattern: str) -> set[str]:
    """The films discovery gives for what `pattern` matches (as DiscoverFilms: candidates and asset maps, each as
    its titles), by name."""
    matched = FileSystems.match([normalise_pattern(pattern)])[0].metadata_list
    return {Path(p.decode()).name for m in matched if is_film_candidate(m.path) or imf.is_asset_map(m.path)
            for p, _ in _titles((m.path.encode(), m.size_in_bytes))}


def test_two_sound_sequences_that_open_with_one_track_file_each_play_their_own(tmp_path):
    """An IMF title's original sound and its dub both open with the same music-only track file, then each its own
    language: each sequence is read with a stream and resources of its own, so the original is heard in its second
    segment (before 2026-12-06 both sequences shared the first track file's stream, and the original played the
    dub's later reels without a word)."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    pic = picture_track(pkg / "p.mxf", [RED])
    music, en, fr = (sound_track(pkg / f"{n}.mxf", 1.0, freq=f) for n, f in (("music", 300.0), ("en", 500.0),
                                                                            ("fr", 700.0)))
    cpl = write_package(pkg, [{"picture": pic, "sound": music, "more_sound": [music], "frames": 24},
                              {"picture": pic, "sound": en, "more_sound": [fr], "frames": 24}])
    comp = imf.read_composition(str(cpl))
    assert [[Path(r.path).name for r in seq] for seq in comp.sounds] == [["music.mxf", "en.mxf"],
                                                                         ["music.mxf", "fr.mxf"]]
    clips = [c for c in windows(cpl) if isinstance(c, DecodedClip)]
    assert [round(tone(c.audio)) for c in clips] == [300, 500]


@pytest.mark.parametrize("layout", ["volume", "mxf_folder"])
def test_an_asset_map_in_a_folder_above_its_files_makes_them_one_title(tmp_path, layout):
    """ST 429-9 asset maps list paths with folders: a DCP volume's one ASSETMAP at its root lists the package in a
    subfolder, and a package's asset map may list its track files in MXF/. The CPL is one title, found through the
    asset map in a folder above it, and its track files are not films of their own (before 2026-12-06 the CPL failed,
    'no ASSETMAP beside it', or was scored along with each of its track files: 5 films from 1 title)."""
    vol = tmp_path / "vol"
    where = vol / "FILM_FTR_SMPTE_OV" if layout == "volume" else vol
    cpl = make_package(where, kind="dcp" if layout == "volume" else "imf", reels=2, seconds_per_reel=1)
    moved = {p.name: (f"{where.name}/{p.name}" if layout == "volume" else f"MXF/{p.name}") for p in where.iterdir()
             if p.name != "ASSETMAP.xml" and (layout == "volume" or p.suffix == ".mxf")}
    text = (where / "ASSETMAP.xml").read_text()
    for name, rel in moved.items():
        text = text.replace(f"<Path>{name}</Path>", f"<Path>{rel}</Path>")
        if layout == "mxf_folder":
            (vol / "MXF").mkdir(exist_ok=True)
            (where / name).rename(vol / rel)
    (where / "ASSETMAP.xml").unlink()
    (vol / "ASSETMAP.xml").write_text(text)
    for pattern in (str(vol), f"{vol}/**/*.mxf"):
        assert discovered(pattern) == {cpl.name}, pattern
    assert [Path(p).name for p in expected_films(match_inputs([str(vol)]), {}, "h")] == [cpl.name]
    assert imf.asset_map_of(str(cpl)) == str(vol / "ASSETMAP.xml")
    assert film_id_for(str(cpl)).startswith(slug(cpl.parent.name))  # (named by the CPL's folder, as before)
    clips = [c for c in windows(cpl) if isinstance(c, DecodedClip)]
    assert len(clips) == 2 and [round(tone(c.audio)) for c in clips] == [300, 500]


def test_a_reel_without_sound_is_silent_there_and_the_later_reels_keep_their_place(tmp_path):
    """A DCP whose reels 1 and 3 carry no MainSound (a silent leader, a silent last reel): each sequence plays each
    reel from the reel's start, so reel 2's sound is heard under reel 2's picture, and the reels without sound are
    silent, each with a non-fatal row saying so (before 2026-12-06 reel 2's sound played under reel 1, and the rest
    moved a reel early without a word)."""
    pkg = tmp_path / "dcp"
    pkg.mkdir()
    colours = [RED, GREEN, (40, 60, 220)]
    reels = [{"picture": picture_track(pkg / f"p{i}.mxf", [colours[i]]), "frames": 24} for i in range(3)]
    reels[1]["sound"] = sound_track(pkg / "s1.mxf", 1.0, freq=500.0)
    cpl = write_package(pkg, reels, kind="dcp")
    assert imf.read_composition(str(cpl)).duration_s == pytest.approx(3.0)
    out = windows(cpl)
    clips = [c for c in out if isinstance(c, DecodedClip)]
    assert [near(colour(c.frames[0]), want) for c, want in zip(clips, colours)] == [True] * 3
    assert float(np.abs(clips[0].audio).max()) < 1e-3 and float(np.abs(clips[2].audio).max()) < 1e-3
    assert round(tone(clips[1].audio)) == 500 and len(clips[2].audio) == pytest.approx(16000, abs=400)
    rows = [e for e in out if isinstance(e, FilmError)]
    assert [(e.fatal, e.message.split(" could not")[0]) for e in rows] == [(False, "the sound of reel 1"),
                                                                          (False, "the sound of reel 3")]
    assert "silence there" in rows[0].message and "from 0.00s to 1.00s" in rows[0].message


def test_an_interop_dcps_font_and_other_listed_files_are_not_films(tmp_path):
    """An Interop DCP carries its subtitles' font (font.ttf), listed in its ASSETMAP: a font is no film anywhere
    (NOT_FILMS; before 2026-12-06 a failed film, 'not a readable media file'). Only MXF files are looked up in
    asset maps (a search for every mp4 of a large archive would cost requests on an object store)."""
    pkg = tmp_path / "Film_Interop_DCP"
    cpl = make_package(pkg, kind="dcp", reels=1, seconds_per_reel=1, subtitles="interop")
    (pkg / "font.ttf").write_bytes(b"\x00\x01\x00\x00" + bytes(2000))
    extra = "".join(f"<Asset><Id>urn:uuid:0000000{i}-0000-0000-0000-000000000000</Id><ChunkList><Chunk><Path>{n}"
                    "</Path></Chunk></ChunkList></Asset>" for i, n in enumerate(("font.ttf",)))
    (pkg / "ASSETMAP").write_text((pkg / "ASSETMAP.xml").read_text().replace("</AssetList>", extra + "</AssetList>"))
    (pkg / "ASSETMAP.xml").unlink()
    assert not is_film_candidate(str(pkg / "font.ttf")) and not is_film_candidate(str(tmp_path / "x.woff2"))
    assert discovered(str(pkg)) == {cpl.name}
    assert [Path(p).name for p in expected_films(match_inputs([str(pkg)]), {}, "h")] == [cpl.name]
    (tmp_path / "alone.bin").write_bytes(bytes(100))  # listed by no asset map: a film as before
    assert imf.titles_of(str(tmp_path / "alone.bin")) is None


def imf_at_rate(folder: Path, reels: int, rate: Fraction, tones: list) -> Path:
    """An IMF title at `rate` (24000/1001) of `reels` segments, each a picture track file of 24 frames and a sound
    track file of as long (48048 samples at 23.976), as FFmpeg writes them: its CPL."""
    import av
    folder.mkdir()
    ids, segments, vt, at = {}, [], f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    samples = int(24 / rate * 48000)
    for i in range(reels):
        with av.open(str(folder / f"p{i}.mxf"), "w", format="mxf") as out:
            s = out.add_stream("jpeg2000", rate=rate)
            s.width, s.height, s.pix_fmt = 96, 64, "rgb24"
            for _ in range(24):
                out.mux(s.encode(av.VideoFrame.from_ndarray(np.full((64, 96, 3), RED, np.uint8), format="rgb24")))
            out.mux(s.encode())
        sound_track(folder / f"s{i}.mxf", samples / 48000, freq=tones[i])
        ids[f"p{i}.mxf"], ids[f"s{i}.mxf"] = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"

        def resource(name, n, edit_rate=""):
            return (f"<Resource><Id>urn:uuid:{uuid.uuid4()}</Id>{edit_rate}<IntrinsicDuration>{n}</IntrinsicDuration>"
                    f"<EntryPoint>0</EntryPoint><SourceDuration>{n}</SourceDuration><TrackFileId>{ids[name]}"
                    "</TrackFileId></Resource>")
        segments.append(f"<Segment><Id>urn:uuid:{uuid.uuid4()}</Id><SequenceList><cc:MainImageSequence><Id>urn:uuid:"
                        f"{uuid.uuid4()}</Id><TrackId>{vt}</TrackId><ResourceList>{resource(f'p{i}.mxf', 24)}"
                        f"</ResourceList></cc:MainImageSequence><cc:MainAudioSequence><Id>urn:uuid:{uuid.uuid4()}</Id>"
                        f"<TrackId>{at}</TrackId><ResourceList>"
                        f"{resource(f's{i}.mxf', samples, '<EditRate>48000 1</EditRate>')}</ResourceList>"
                        "</cc:MainAudioSequence></SequenceList></Segment>")
    cpl_id = f"urn:uuid:{uuid.uuid4()}"
    (folder / "CPL.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><CompositionPlaylist '
        'xmlns="http://www.smpte-ra.org/schemas/2067-3/2016" '
        f'xmlns:cc="http://www.smpte-ra.org/schemas/2067-2/2016"><Id>{cpl_id}</Id><ContentTitle>T</ContentTitle>'
        f"<EditRate>{rate.numerator} {rate.denominator}</EditRate><SegmentList>{''.join(segments)}</SegmentList>"
        "</CompositionPlaylist>")
    listed = "".join(f"<Asset><Id>{u}</Id><ChunkList><Chunk><Path>{n}</Path></Chunk></ChunkList></Asset>"
                     for n, u in [("CPL.xml", cpl_id)] + list(ids.items()))
    (folder / "ASSETMAP.xml").write_text('<?xml version="1.0" encoding="UTF-8"?><AssetMap xmlns="http://www.smpte-'
                                         f'ra.org/schemas/429-9/2007/AM"><AssetList>{listed}</AssetList></AssetMap>')
    return folder / "CPL.xml"


def test_a_23976_reels_sound_ends_with_its_stretch(tmp_path):
    """At 23.976 a reel's sound (48048 samples) ends inside a packet: the packet is cut there, so the next reel's
    first milliseconds are its own sound, and no AudioOverlap row says packets were repeated (before 2026-12-06 the
    packet was kept whole: the next reel opened with 20-40 ms of this one's sound, and a misleading row)."""
    rate = Fraction(24000, 1001)
    cpl = imf_at_rate(tmp_path / "T", 3, rate, [300.0, 500.0, 700.0])
    out = list(decode_film(job_for(cpl), DecodeConfig(segment="window", window_s=float(24 / rate),
                                                      hop_s=float(24 / rate))))
    clips = [c for c in out if isinstance(c, DecodedClip)]
    assert not [e.error_type for e in out if isinstance(e, FilmError)]
    assert [round(tone(c.audio[:320]), -2) for c in clips] == [300, 500, 700]  # each reel's first 20 ms
    assert [len(c.audio) for c in clips] == [pytest.approx(16016, abs=40)] * 3


@pytest.mark.parametrize("name", ["ASSETMAP.XML", "assetmap.xml", "Assetmap"])
def test_an_asset_map_is_read_whatever_the_case_of_its_name(tmp_path, name):
    """A package copied through a Windows or FAT tool keeps its asset map as ASSETMAP.XML or assetmap.xml: it is the
    package's asset map all the same, kept by discovery (not a sidecar .XML), and the title is scored (before
    2026-12-06 the title vanished without a word and its track files were scored one by one)."""
    pkg = tmp_path / "pkg"
    cpl = make_package(pkg, kind="dcp", reels=1, seconds_per_reel=1)
    (pkg / "ASSETMAP.xml").rename(pkg / name)
    assert imf.is_asset_map(str(pkg / name))
    assert discovered(str(pkg)) == {cpl.name}
    assert imf.asset_map_of(str(cpl)) == str(pkg / name)
    assert [Path(p).name for p in expected_films(match_inputs([str(pkg)]), {}, "h")] == [cpl.name]


def vts_ifo(titles: int, chains: list[list[int]]) -> bytes:
    """A VTS IFO (DVD-Video VTSI) of `titles` titles and a program chain for each list of cell categories (the first
    byte of a cell's playback information: 0x50 an angle block's first cell, 0x90 inside it, 0xD0 its last)."""
    mat = bytearray(b"DVDVIDEO-VTS" + bytes(2036))
    ptt = bytearray(titles.to_bytes(2, "big") + bytes(6) + b"".join((8 + 4 * titles + 4 * i).to_bytes(4, "big")
                                                                    for i in range(titles)) + bytes(4 * titles))
    pgcs = [bytearray(0xEC + 24 * len(cells)) for cells in chains]
    for pgc, cells in zip(pgcs, chains):
        pgc[3] = len(cells)
        pgc[0xE8:0xEA] = (0xEC).to_bytes(2, "big")
        for i, category in enumerate(cells):
            pgc[0xEC + 24 * i] = category
    head, at = bytearray(len(chains).to_bytes(2, "big") + bytes(6)), 8 + 8 * len(chains)
    for i, pgc in enumerate(pgcs):
        head += bytes([0x81 + i, 0, 0, 0]) + at.to_bytes(4, "big")
        at += len(pgc)
    pgci = head + b"".join(pgcs)
    mat[0xC8:0xCC], mat[0xCC:0xD0] = (1).to_bytes(4, "big"), (2).to_bytes(4, "big")
    return bytes(mat) + bytes(ptt).ljust(2048, b"\0") + bytes(pgci).ljust(2048 * (len(pgci) // 2048 + 1), b"\0")


def test_a_dvd_title_set_of_several_titles_or_angles_is_said_to_be_read_as_it_runs(tmp_path):
    """A title set's IFO says what it holds: a title set of two titles, or of one title with a two-angle block,
    is scored as its VOBs run (angles interleaved), and layout_note words the row that says so; a title set of one
    title, one program chain, no angles, or one whose IFO is no DVD's, gives none (before 2026-12-06 the IFO was
    never read, and such a title set was scored as one linear title without a word)."""
    from transforms import dvd
    vt = tmp_path / "Film (2001)" / "VIDEO_TS"
    vt.mkdir(parents=True)
    for n, ifo in (("01", vts_ifo(2, [[0], [0]])), ("02", vts_ifo(1, [[0, 0x50, 0x90, 0xD0, 0]])),
                   ("03", vts_ifo(1, [[0, 0]])), ("04", b"DVDVIDEO-VTS" + bytes(2036))):
        (vt / f"VTS_{n}_1.VOB").write_bytes(bytes(2048))
        (vt / f"VTS_{n}_0.IFO").write_bytes(ifo)
    assert dvd.title_set_layout(str(vt / "VTS_01_1.VOB")) == dvd.TitleSetLayout(2, 2, 1)
    assert dvd.title_set_layout(str(vt / "VTS_02_1.VOB")) == dvd.TitleSetLayout(1, 1, 3)
    assert "2 titles, 2 program chains" in dvd.layout_note(str(vt / "VTS_01_1.VOB"))
    assert "3 camera angles" in dvd.layout_note(str(vt / "VTS_02_1.VOB"))
    assert dvd.layout_note(str(vt / "VTS_03_1.VOB")) is None and dvd.layout_note(str(vt / "VTS_04_1.VOB")) is None
    (vt / "VTS_02_0.IFO").rename(vt / "vts_02_0.bup")  # only the backup, in lower case
    assert dvd.title_set_layout(str(vt / "VTS_02_1.VOB")) == dvd.TitleSetLayout(1, 1, 3)
    # the subtitles step (the first to read beside the film) writes the row, non-fatal
    from transforms.discover import film_id_for
    from transforms.elements import FilmInfo, FilmRef
    from transforms.subtitles import LoadSubtitles
    info = FilmInfo(duration_s=1.0, width=720, height=480, fps=25.0, video_codec="mpeg2video", audio_codec=None,
                    has_video=True, has_audio=False)
    for n, rows in (("01", ["DvdTitleSet"]), ("03", [])):
        path = str(vt / f"VTS_{n}_1.VOB")
        [job] = LoadSubtitles("cfg", transcribe="never").process((FilmRef(path, 2048, film_id_for(path)), info))
        assert [w.error_type for w in job.warnings if w.error_type == "DvdTitleSet" and not w.fatal] == rows


def test_a_dvd_ifo_the_storage_fails_to_list_costs_only_the_note(tmp_path, monkeypatch):
    """The layout note is not worth the film: a listing of its folder that the storage fails gives no note."""
    from transforms import dvd

    def refuse(patterns):
        raise OSError("the storage failed")
    monkeypatch.setattr(dvd.FileSystems, "match", refuse)
    assert dvd.layout_note(str(tmp_path / "VIDEO_TS" / "VTS_01_1.VOB")) is None
