"""The single decode pass: sampled frames + 16 kHz audio per clip, streaming, and every awkward input."""
import math
import os
from pathlib import Path

import numpy as np
import pytest

from model.featurize import frames_for
from testing.films import (encode_film, make_audio_only, make_av1, make_damaged, make_film, make_joined_recording,
                           make_text_as_video, make_truncated, make_zero_byte, speech_like, write_srt)
from transforms.decode import BY_FILM, SAMPLE_RATE, DecodeConfig, DecodeError, decode_film, decoding_threads
from transforms.discover import film_id_for
from transforms.elements import DecodedClip, FilmError, FilmInfo, FilmJob, FilmRef
from transforms.probe import NotAFilm, ProbeFilm, probe_film
from transforms.subtitles import load_cues

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
needs_media = pytest.mark.skipif(not MEDIA.exists(), reason="shared media not present")


def job_for(path, transcribe=False) -> FilmJob:
    path = str(path)
    ref = FilmRef(path, Path(path).stat().st_size, film_id_for(path), "fp")
    info = probe_film(path)
    cues, _, _ = load_cues(ref, info)
    return FilmJob(ref, info, tuple(cues), needs_asr=transcribe, config_hash="test")


def decode(path, **cfg):
    stats = {}
    out = list(decode_film(job_for(path), DecodeConfig(**cfg), stats=stats))
    clips = [o for o in out if isinstance(o, DecodedClip)]
    errors = [o for o in out if isinstance(o, FilmError)]
    return clips, errors, stats


def mux_frames(out, stream, frames) -> None:
    """Encode RGB frames (one a time unit) into an open PyAV output's video stream, and flush it."""
    import av
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def check_clips(clips, size=224, n=4):
    assert [c.spec.clip_index for c in clips] == list(range(len(clips)))
    for a, b in zip(clips, clips[1:]):
        assert b.spec.start_s == pytest.approx(a.spec.end_s)
    for c in clips:
        assert c.frames.dtype == np.uint8 and c.frames.shape[1:] == (size, size, 3) and len(c.frames) <= n
        assert c.audio.dtype == np.float32 and c.audio.ndim == 1
        assert len(c.frame_times) == len(c.frames)
        assert np.all(c.frame_times >= c.spec.start_s - 0.2) and np.all(c.frame_times <= c.spec.end_s + 0.2)


def test_window_clips_have_sampled_frames_and_matching_audio(tmp_path):
    film = make_film(tmp_path / "f.mp4", duration_s=10.0, fps=10)
    clips, errors, stats = decode(film, segment="window", window_s=4.0, image_size=64)
    assert not errors
    check_clips(clips, size=64)
    assert [(c.spec.start_s, round(c.spec.end_s, 1)) for c in clips] == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]
    assert all(len(c.frames) == frames_for(c.spec.start_s, c.spec.end_s, 4) for c in clips)
    for c in clips:  # 16 kHz mono covering the clip
        assert abs(len(c.audio) - (c.spec.end_s - c.spec.start_s) * SAMPLE_RATE) < 0.05 * SAMPLE_RATE
        assert np.abs(c.audio).max() > 0.05
    assert stats["converted"] <= 4 * len(clips)  # only the sampled frames became RGB
    # frames are sampled at bin centres, using real frame timestamps (10 fps -> within 0.05 s)
    assert np.allclose(clips[0].frame_times, [0.5, 1.5, 2.5, 3.5], atol=0.051)


def test_memory_stays_bounded_on_a_longer_film(tmp_path):
    film = make_film(tmp_path / "long.mkv", duration_s=90.0, fps=5, size=(48, 32))
    clips, _, stats = decode(film, segment="window", window_s=4.0, image_size=32)
    assert len(clips) == 23 and stats["media_end_s"] == pytest.approx(90.0, abs=0.3)
    assert stats["max_audio_buffered_s"] < 2 * 4.0 + 1.0  # audio kept for the open clip only, not the film


def test_embedded_subtitles_drive_the_clips(tmp_path):
    film = make_film(tmp_path / "s.mkv", duration_s=8.0,
                     subtitles=[(1.0, 2.5, "First line"), (2.6, 2.9, "tiny"), (5.0, 6.5, "Last line")])
    clips, errors, _ = decode(film, image_size=32)
    check_clips(clips, size=32)
    texts = [c.spec.text for c in clips if c.spec.text]
    assert texts == ["First line tiny", "Last line"]
    assert clips[-1].spec.end_s == pytest.approx(8.0, abs=0.1)
    last = next(c for c in clips if c.spec.text == "Last line")
    assert last.spec.context == ("First line tiny",)


def test_shot_cuts_are_found_in_the_same_pass(tmp_path):
    film = make_film(tmp_path / "cuts.mp4", duration_s=12.0, fps=10, cuts=[3.0, 7.5])
    clips, _, _ = decode(film, segment="shot", image_size=32)
    check_clips(clips, size=32)
    starts = [c.spec.start_s for c in clips]
    assert any(abs(s - 3.0) <= 0.11 for s in starts) and any(abs(s - 7.5) <= 0.11 for s in starts)
    assert all(c.spec.segment_source == "shot" for c in clips) and len(clips) == 3


def test_windows_and_shots_read_the_lines_said_in_them(tmp_path):
    """--segment window / shot cut where they cut, not at the lines, but a film's subtitles are still its dialogue:
    each clip takes the lines said in it (a line across a cut whole in the clip holding its midpoint), with the lines
    said before it as context. Before 2026-12-04 those clips had no text at all, so a subtitled film cut into shots was
    labelled without its dialogue."""
    film = make_film(tmp_path / "s.mkv", duration_s=12.0, fps=10, cuts=[6.0],
                     subtitles=[(1.0, 2.5, "First line"), (5.4, 7.4, "one two three four"), (9.0, 10.0, "Last")])
    for cfg in ({"segment": "window", "window_s": 4.0}, {"segment": "shot"}):
        clips, _, _ = decode(film, image_size=32, **cfg)
        said = [(c.spec.text, c.spec.text_source, c.spec.context) for c in clips]
        assert " ".join(t for t, _, _ in said if t).split() == "First line one two three four Last".split(), cfg
        assert all(src == ("subtitle" if t else "none") for t, src, _ in said), said
        assert all(c.spec.segment_source == cfg["segment"] for c in clips)
        lines = [(t, ctx) for t, _, ctx in said if t]
        assert lines[0][1] == () and all(ctx[-1] == prev for (prev, _), (_, ctx) in zip(lines, lines[1:])), lines
    # the shot cut at 6.0 s falls inside the second line: read whole by the shot that holds its midpoint (6.4 s:
    # the later one), not as two fragments (segment.line_units)
    assert [t for t, _, _ in said if t] == ["First line", "one two three four Last"]


def test_the_clip_text_rules_redo_the_runs_they_change_only(monkeypatch):
    """A nightly run redoes films cut into windows or shots when what their clips read changes
    (transforms.decode.WINDOW_TEXT_RULE is in their config hash); subtitle-cut catalogues are not redone."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipeline.options import FilmEmotionOptions, config_hash
    import transforms.decode as decoding

    def hashes():
        return [config_hash(PipelineOptions(["--segment", s]).view_as(FilmEmotionOptions), "m")
                for s in ("subtitle", "window", "shot")]
    before = hashes()
    monkeypatch.setattr(decoding, "WINDOW_TEXT_RULE", decoding.WINDOW_TEXT_RULE + "-next")
    after = hashes()
    assert after[0] == before[0] and after[1] != before[1] and after[2] != before[2]
    # and what the pieces of a long line read (transforms.segment.PIECE_TEXT_RULE) redoes subtitle-cut runs only
    import transforms.segment as segmenting
    monkeypatch.setattr(segmenting, "PIECE_TEXT_RULE", segmenting.PIECE_TEXT_RULE + "-next")
    pieces = hashes()
    assert pieces[0] != after[0] and pieces[1:] == after[1:]
    # a clips schema that only adds a column the decode fills (1.2: damaged) redoes nothing; one that is marked to
    # be redone for (REDO_VERSION) redoes every film
    from schemas import clips as clips_schema
    monkeypatch.setattr(clips_schema, "VERSION", clips_schema.VERSION + "-next")
    assert hashes() == pieces
    monkeypatch.setattr(clips_schema, "REDO_VERSION", clips_schema.REDO_VERSION + "-next")
    assert all(a != b for a, b in zip(hashes(), pieces))


def test_a_clip_takes_the_lines_said_in_it_and_the_speech_around_them():
    """transforms.decode._clip_text: the subtitle lines said in the clip, then the recognised utterances that meet
    no line (a forced track's sign and the speech after it), in time order; an
    utterance that meets a line says the line again, a little off its times (Sintel's trailer with --transcribe
    always read "I've been I've been alone ..."), so it is left out. ASR alone gives an `asr` text."""
    from transforms.decode import _clip_text
    from transforms.segment import cue_words
    from transforms.elements import ClipSpec, Cue
    sign = Cue(1.0, 2.0, "Sign text", language="en")
    assert cue_words(sign) == ((" Sign", 1.0, 1.5), (" text", 1.5, 2.0))
    over = Cue(0.8, 2.1, "sign text", source="asr", language="en", words=((" sign", 0.8, 1.4), (" text", 1.5, 2.1)))
    after = Cue(2.5, 3.4, "hello there", source="asr", language="en",
                words=((" hello", 2.5, 2.9), (" there", 3.0, 3.4)))
    clip = ClipSpec(0, 0.0, 4.0, "window")
    both = _clip_text(clip, [over, after], [sign], max_len=8.0)
    assert (both.text, both.text_source, both.language) == ("Sign text hello there", "subtitle", "en")
    heard = _clip_text(clip, [over, after], max_len=8.0)
    assert (heard.text, heard.text_source) == ("sign text hello there", "asr")
    assert _clip_text(ClipSpec(0, 3.5, 4.0, "window"), [over, after], [sign], max_len=8.0).text is None  # nothing said in it
    # the line across the window's edge: whole in the window holding its midpoint, the utterance that repeats it
    # nowhere; a line longer than --max_clip_s goes by its words
    first, second = (_clip_text(ClipSpec(0, a, b, "window"), [over], [sign], max_len=8.0).text
                     for a, b in ((0.0, 1.4), (1.4, 4.0)))
    assert (first, second) == (None, "Sign text")
    first, second = (_clip_text(ClipSpec(0, a, b, "window"), [over], [sign], max_len=0.5).text
                     for a, b in ((0.0, 1.5), (1.5, 4.0)))
    assert (first, second) == ("Sign", "text")
    # a subtitle plan's gap beside a line: the line is a clip of its own, and the utterance repeating it is not read
    gap = _clip_text(ClipSpec(0, 0.0, 1.0, "window"), [over, after], [sign], read_lines=False, max_len=8.0)
    assert gap.text is None and _clip_text(ClipSpec(0, 2.2, 4.0, "window"), [over, after], [sign],
                                           read_lines=False, max_len=8.0).text == "hello there"


@needs_media
def test_scene_change_real_file_has_its_one_cut():
    # scene-change.mov: ~1 fps MJPEG, a title slide until 12 s, then a group photo slide.
    clips, _, _ = decode(MEDIA / "odd" / "scene-change.mov", segment="shot", image_size=32)
    cuts = [c.spec.start_s for c in clips[1:]]
    assert any(abs(t - 12.0) < 0.01 for t in cuts)
    long_shot_splits = [t for t in cuts if abs(t - 12.0) >= 0.01]
    assert all(t < 12.0 for t in long_shot_splits)  # the 12 s opening shot is only split for --max_clip_s
    assert clips[-1].spec.end_s == pytest.approx(20.0, abs=0.1)


def test_audio_only_and_video_only(tmp_path):
    clips, errors, _ = decode(make_audio_only(tmp_path / "a.m4a", duration_s=5.0), segment="window")
    assert not errors and clips and all(len(c.frames) == 0 and c.audio.size > 0 for c in clips)
    film = make_film(tmp_path / "v.mp4", duration_s=3.0, audio=False)
    clips, errors, _ = decode(film, segment="window", image_size=32)
    assert not errors and all(len(c.frames) == frames_for(c.spec.start_s, c.spec.end_s, 4) and c.audio.size == 0 for c in clips)


@needs_media
def test_real_video_without_audio_and_real_failing_audio_file():
    clips, errors, _ = decode(MEDIA / "odd" / "video-only.mov", segment="window", image_size=32)
    assert clips and all(c.audio.size == 0 and len(c.frames) > 0 for c in clips)
    # This file's MP3 track fails in some players; PyAV's FFmpeg decodes it: frames and audio both arrive,
    # and whatever fails is reported as a warning rather than stopping the film.
    clips, errors, _ = decode(MEDIA / "odd" / "video_with_failing_audio.mp4", segment="window", image_size=32)
    assert clips and all(len(c.frames) == frames_for(c.spec.start_s, c.spec.end_s, 4) for c in clips) and all(not e.fatal for e in errors)


def test_a_track_in_a_codec_ffmpeg_does_not_know_is_passed_over(tmp_path):
    """A stream whose header names no codec FFmpeg can decode (bits flipped in it, or a format it does not know)
    has no decoder. Before 2026-12-06 such an audio track failed the probe with an AttributeError; now the film is
    scored without it, and a warning row says so. A picture without a decoder leaves the sound."""
    data = make_film(tmp_path / "whole.mkv", duration_s=4.0).read_bytes()
    assert data.count(b"A_AAC") == 1 and data.count(b"V_MPEG4/ISO/ASP") == 1  # Matroska's codec ids
    no_sound, no_picture = tmp_path / "no_sound.mkv", tmp_path / "no_picture.mkv"
    no_sound.write_bytes(data.replace(b"A_AAC", b"A_ZZZ"))
    no_picture.write_bytes(data.replace(b"V_MPEG4/ISO/ASP", b"V_ZZZZZ/ISO/ZZZ"))
    info = probe_film(str(no_sound))
    assert info.has_video and not info.has_audio and info.audio_codec is None
    clips, errors, _ = decode(no_sound, segment="window", image_size=32)
    assert clips and all(len(c.frames) and c.audio.size == 0 for c in clips)
    assert [(e.error_type, e.fatal) for e in errors] == [("UnknownCodec", False)]
    assert errors[0].message.startswith("audio stream 1 has a codec FFmpeg cannot decode")
    assert probe_film(str(no_picture)).has_audio and not probe_film(str(no_picture)).has_video
    clips, errors, _ = decode(no_picture, segment="window", image_size=32)
    assert clips and all(len(c.frames) == 0 and c.audio.size for c in clips)
    assert "the clips have no frames" in errors[0].message


def test_metadata_that_is_not_utf8_does_not_stop_the_film(tmp_path):
    """A title and track names in Latin-1 (old AVI and Matroska releases): PyAV's default decoding of metadata
    failed av.open itself with a UnicodeDecodeError (before 2026-12-06: the film failed at the probe)."""
    import av
    source = make_film(tmp_path / "source.mkv", duration_s=2.0)
    film = tmp_path / "latin1.mkv"
    with av.open(str(source)) as src, av.open(str(film), "w", metadata_encoding="latin-1") as out:
        out.metadata["title"] = "Amélie à Paris"
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for s in streams.values():
            s.metadata["title"] = "Piste française"
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    assert b"Am\xe9lie" in film.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        av.open(str(film)).close()
    assert probe_film(str(film)).has_audio
    clips, errors, _ = decode(film, segment="window", image_size=32)
    assert clips and not errors


def test_undecodable_audio_keeps_the_frames(tmp_path):
    film = make_film(tmp_path / "bad_audio.mkv", duration_s=4.0, garbage_audio=True)
    clips, errors, stats = decode(film, segment="window", image_size=32)
    assert clips and all(len(c.frames) == frames_for(c.spec.start_s, c.spec.end_s, 4) and c.audio.size == 0 for c in clips)
    assert stats["audio_failed"] and len(errors) == 1 and not errors[0].fatal
    assert errors[0].error_type == "AudioDecodeError"


def test_variable_frame_rate_uses_timestamps(tmp_path):
    film = make_film(tmp_path / "vfr.mkv", duration_s=6.0, fps=10, vfr=True)
    clips, _, _ = decode(film, segment="window", window_s=2.0, image_size=32)
    times = np.concatenate([c.frame_times for c in clips])
    # Frames sit at 0, 0.1, 0.4, 0.5, 0.8, ... (gaps alternate 0.1/0.3 s); times counted as index/fps would not.
    phase = np.round(np.mod(times, 0.4), 2)
    assert set(phase) <= {0.0, 0.1, 0.4} and len(times) == 2 * len(clips)  # 2 s clips: one frame per second
    assert clips[-1].spec.end_s == pytest.approx(6.0, abs=0.35)


def test_av1_film(tmp_path):
    policy = os.sched_getscheduler(0)
    film = make_av1(tmp_path / "av1.mkv", duration_s=2.0)
    # the encoder (SVT-AV1, as root) leaves its caller at real-time priority; make_av1 puts it back, or every
    # thread the rest of the session starts would inherit it (a test session hung so, twice)
    assert os.sched_getscheduler(0) == policy
    if film is None:
        pytest.skip("PyAV's FFmpeg has no AV1 encoder")
    assert probe_film(str(film)).video_codec in ("libdav1d", "av1", "libaom-av1")
    clips, errors, _ = decode(film, segment="window", image_size=32)
    assert clips and all(len(c.frames) == frames_for(c.spec.start_s, c.spec.end_s, 4) for c in clips) and not errors


def test_broken_files_fail_at_probe_with_clear_messages(tmp_path):
    broken = [make_zero_byte(tmp_path / "zero.mp4"), make_text_as_video(tmp_path / "text.mp4"),
              make_truncated(tmp_path / "truncated.mp4")]
    for f in broken:
        ref = FilmRef(str(f), f.stat().st_size, film_id_for(str(f)), "fp")
        out = list(ProbeFilm().process(ref))
        assert len(out) == 1 and out[0].tag == "errors"
        err = out[0].value
        assert err.fatal and err.stage == "probe" and err.film_id == ref.film_id
        assert "empty" in err.message or "not a readable media file" in err.message
        if f.name == "text.mp4":  # named as text, with its first line (not "the start of the file is damaged")
            assert "a text file, not audio or video (it begins " in err.message, err.message
    # text beside films in an archive, without an extension (GRID's word alignments, a notes file in Latin-1): named
    # as text too; a film whose first bytes were overwritten is binary, so it keeps its own diagnosis
    from transforms.probe import text_start
    notes = tmp_path / "notes"
    notes.write_bytes("Caf\xe9 scene, take 2\n".encode("cp1252") + b"x" * 5000)
    grid = MEDIA / "grid" / "swwp2s.align"
    for f in [notes] + ([grid] if grid.is_file() else []):
        (out,) = list(ProbeFilm().process(FilmRef(str(f), f.stat().st_size, film_id_for(str(f)), "fp")))
        assert out.value.stage == "probe" and "a text file, not audio or video" in out.value.message, out.value.message
        assert repr(text_start(str(f))) in out.value.message
    assert text_start(str(notes)) == "Caf\ufffd scene, take 2"
    assert text_start(str(make_truncated(tmp_path / "t2.mp4"))) is None
    # films packed in an archive or a disc image: said so, with what to do (before 2026-12-06 "not a readable media
    # file" alone)
    import gzip
    import tarfile
    import zipfile
    film = make_truncated(tmp_path / "film.mp4")
    with zipfile.ZipFile(tmp_path / "films.zip", "w") as z:
        z.write(film, "film.mp4")
    with tarfile.open(tmp_path / "films.tar", "w") as t:
        t.add(film, "film.mp4")
    (tmp_path / "films.tar.gz").write_bytes(gzip.compress((tmp_path / "films.tar").read_bytes()))
    disc = bytearray(40 << 10)
    disc[0x8001:0x8006] = b"CD001"
    (tmp_path / "disc.iso").write_bytes(bytes(disc))
    said = {"films.zip": "a zip archive", "films.tar": "a tar archive", "films.tar.gz": "a gzip-compressed file",
            "disc.iso": "a disc image (ISO 9660 / UDF), not a film: mount or unpack it"}
    for name, kind in said.items():
        f = tmp_path / name
        (out,) = list(ProbeFilm().process(FilmRef(str(f), f.stat().st_size, film_id_for(str(f)), "fp")))
        assert out.value.stage == "probe" and f"not a readable media file: {kind}" in out.value.message, name
    assert text_start(str(make_zero_byte(tmp_path / "z2.mp4"))) is None


def test_a_matroska_file_cut_in_its_header_is_the_files_fault_not_the_storages(tmp_path):
    """FFmpeg's Matroska demuxer gives EIO, as a failing disk would, for a file that ends inside its header. The
    file reads back whole, so it is the file's: a `probe` failure, skipped until its bytes change (before
    2026-12-06 a `read` failure, tried again every night, said to be the storage's)."""
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(make_film(tmp_path / "whole.mkv", duration_s=2.0).read_bytes()[:654])
    (out,) = list(ProbeFilm().process(FilmRef(str(cut), cut.stat().st_size, film_id_for(str(cut)), "fp")))
    assert out.value.stage == "probe" and out.value.fatal
    assert out.value.message.startswith("not a readable media file (truncated, damaged")
    # The same file on a bucket (flaky://: served through Beam's FileSystems as gs:// is): read back through it, so
    # the file's own too (before 2026-12-06 a `read` failure there, retried every night); and while the storage
    # fails where the file is read back, the storage's
    from testing.flaky_fs import FAILING, PREFIX
    remote = PREFIX + str(cut)
    (out,) = list(ProbeFilm().process(FilmRef(remote, cut.stat().st_size, film_id_for(remote), "fp")))
    assert out.value.stage == "probe" and out.value.fatal, out.value
    FAILING[str(cut)] = (0.5, 0.9)
    try:
        from transforms.probe import storage_failure
        import av
        assert storage_failure(av.error.FFmpegError(5, "Input/output error"), remote)
        assert not storage_failure(av.error.FFmpegError(5, "Input/output error"), str(cut))  # (local: reads back)
    finally:
        FAILING.pop(str(cut))


def test_truncated_stream_keeps_what_decoded(tmp_path):
    full = make_film(tmp_path / "full.mkv", duration_s=8.0, fps=10)
    cut = make_truncated(tmp_path / "cut.mkv", source=full, keep=0.5)
    clips, errors, stats = decode(cut, segment="window", image_size=32)
    assert clips and stats["media_end_s"] < 7.0  # what is there is cut and decoded; no exception
    assert clips[-1].spec.end_s <= stats["media_end_s"] + 1e-6


def test_process_film_commits_once_and_dead_letters(tmp_path):
    # The per-film step commits the film's tables itself; a retried film rewrites the same names.
    import pyarrow.parquet as pq

    from transforms.film import ProcessFilm
    film = make_film(tmp_path / "ok.mp4", duration_s=3.0)
    out = tmp_path / "out"
    dofn = ProcessFilm(str(out), "r1", DecodeConfig(segment="window", image_size=32))
    job = job_for(film)
    [row] = list(dofn.process(job))
    assert row["status"] == "ok" and row["n_clips"] == 1 and row["wall_s"] > 0 and row["run_id"] == "r1"
    clips = pq.read_table(row["output_file"]).to_pylist()
    assert len(clips) == 1 and clips[0]["n_frames"] == 3 and clips[0]["has_audio"]  # 3 s: a frame per second
    assert clips[0]["config_hash"] == "test" and clips[0]["emotion"] is None
    assert list(dofn.process(job))[0]["status"] == "ok"  # processed twice, as a retried bundle would
    assert [f.name for f in (out / "clips").iterdir()] == [f"{job.ref.film_id}.parquet"]
    [manifest] = list((out / "manifest" / "r1").iterdir())
    assert manifest.name == f"{job.ref.film_id}.parquet" and pq.read_table(manifest).num_rows == 1
    assert not (out / "errors" / "r1").exists()
    # A job whose file vanished after probing: a failed row and one fatal error, no exception; at `read`, which the
    # next run retries (the file not there is not its bytes: before 2026-12-07 `decode`, never retried)
    Path(film).unlink()
    [row] = list(dofn.process(job))
    assert row["status"] == "failed" and row["error"].startswith("read: FileNotFoundError")
    [err] = pq.read_table(out / "errors" / "r1" / f"{job.ref.film_id}.parquet").to_pylist()
    assert err["fatal"] and err["stage"] == "read" and err["run_id"] == "r1"
    with pytest.raises((DecodeError, Exception)):
        list(decode_film(job, DecodeConfig()))
    assert NotAFilm  # exported for callers that probe themselves


def test_the_films_own_sound_not_a_commentary(tmp_path):
    """A release whose first audio track is a commentary (or an audio description) is heard on its main track."""
    import av
    path = tmp_path / "release.mkv"
    with av.open(str(path), "w") as out:
        tracks = [(out.add_stream("aac", rate=16000, layout="mono"), hz) for hz in (300, 500)]
        tracks[0][0].disposition = av.stream.Disposition.comment
        tracks[1][0].disposition = av.stream.Disposition.default
        for stream, hz in tracks:
            wave = (0.3 * np.sin(2 * np.pi * hz * np.arange(3 * 16000) / 16000)).astype(np.float32)
            for i in range(0, len(wave), 1024):
                frame = av.AudioFrame.from_ndarray(np.pad(wave[i:i + 1024], (0, max(0, i + 1024 - len(wave))))[None],
                                                   format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    assert probe_film(str(path)).has_audio
    clips, errors, _ = decode(path, segment="window", window_s=3.0)
    wave = np.concatenate([c.audio for c in clips])
    spectrum = np.abs(np.fft.rfft(wave[:16000]))
    assert not errors and np.argmax(spectrum) == pytest.approx(500, abs=5)  # 1 Hz bins over one second


def test_anamorphic_films_are_seen_as_shown(tmp_path):
    """A 720x480 DVD-style film with 32:27 pixels is shown at 16:9: its face frames are 16:9, not 3:2."""
    import fractions

    import av
    path = tmp_path / "dvd.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 720, 480, "yuv420p"
        v.codec_context.sample_aspect_ratio = fractions.Fraction(32, 27)
        mux_frames(out, v, [np.full((480, 720, 3), 10 * i, np.uint8) for i in range(20)])
    info = probe_film(str(path))
    assert (info.width, info.height) == (720, 480) and info.sample_aspect == pytest.approx(32 / 27)
    assert info.display_aspect == pytest.approx(9 / 16)
    clips, errors, _ = decode(path, segment="window", window_s=2.0, face_width=480)
    assert not errors and clips[0].face_frames.shape[1:] == (270, 480, 3)


def test_rotated_footage_is_turned_upright(tmp_path):
    """A frame stored sideways with a display rotation (phone footage) reaches the models as it is shown."""
    import av
    path = tmp_path / "phone.mp4"
    stored = np.zeros((180, 320, 3), np.uint8)
    stored[:40, -60:] = 255  # a white block in the stored frame's top-right corner
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        v.set_display_rotation(90)  # shown turned 90 degrees counterclockwise: the block ends up top-left
        mux_frames(out, v, [stored] * 20)
    clips, errors, _ = decode(path, segment="window", window_s=2.0, image_size=32, face_width=320)
    rgb, face = clips[0].frames[0], clips[0].face_frames[0]
    # portrait, as shown, and --face_width wide as shown, as the same picture stored upright is (before 2026-12-07
    # 180 wide: the width was taken in the stored orientation, and small faces were missed)
    assert not errors and face.shape == (568, 320, 3)
    for img in (rgb, face):
        h, w = img.shape[:2]
        corners = [img[:h // 8, :w // 8].mean(), img[:h // 8, -w // 8:].mean(), img[-h // 8:, :w // 8].mean()]
        assert corners[0] > 200 and max(corners[1:]) < 50


def test_black_bars_around_the_picture_are_cut_off(tmp_path):
    """A scope picture in a 16:9 frame (letterbox) or a 4:3 one (pillarbox): before 2026-12-07 the bars went to the
    scene classifier (Emotion6 dev 0.441 with side bars, 0.535 without) and the face detector searched a 4:3 picture
    at three quarters of --face_width. Now the bars found in frames sampled across the film are cut off every frame
    the models read (the ViT's square, the face copy at the picture's own shape); a film without bars, or one whose
    dark stretch runs along one edge only (a picture's own shadow), or whose samples are all dark, is read whole.
    A still (labelled photos and film stills) loses its bars by the same rule."""
    import av

    from transforms.decode import still_clip
    from transforms.picture_area import bars, crop_still
    rng = np.random.default_rng(0)

    def film(name, y0, y1, x0, x1, n=30):
        frames = []
        for _ in range(n):
            img = np.zeros((180, 320, 3), np.uint8)
            img[y0:y1, x0:x1] = rng.integers(60, 200, (y1 - y0, x1 - x0, 3))
            img[y0:y0 + 20, x0:x0 + 40] = 255  # a white block at the picture's top-left corner
            frames.append(img)
        path = tmp_path / name
        with av.open(str(path), "w") as out:
            v = out.add_stream("libx264", rate=10)
            v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
            mux_frames(out, v, frames)
        return path, frames[0]

    for name, box, face_shape in (("letterbox.mp4", (24, 156, 0, 320), (132, 320, 3)),
                                  ("pillarbox.mp4", (0, 180, 40, 280), (240, 320, 3))):
        path, first = film(name, *box)
        top, bottom, left, right = probe_film(str(path)).picture_area
        y0, y1, x0, x1 = box
        assert abs(top - y0 / 180) < 0.02 and abs(bottom - (180 - y1) / 180) < 0.02, (top, bottom)
        assert abs(left - x0 / 320) < 0.02 and abs(right - (320 - x1) / 320) < 0.02, (left, right)
        clips, errors, _ = decode(path, segment="window", window_s=2.0, image_size=32, face_width=320)
        rgb, face = clips[0].frames[0], clips[0].face_frames[0]
        assert not errors and abs(face.shape[0] - face_shape[0]) <= 4 and face.shape[1:] == face_shape[1:]
        for img in (rgb, face):  # no bar left on any side; the picture's corner at the copy's corner
            h, w = img.shape[:2]
            assert min(img[:2].mean(), img[-2:].mean(), img[:, :2].mean(), img[:, -2:].mean()) > 40
            assert img[:h // 12, :w // 12].mean() > 200
        assert still_clip(first).face_frames[0].shape[:2] == still_clip(first[y0:y1, x0:x1]).face_frames[0].shape[:2]
    # a programme that changes resolution part way, the shape kept: its bars are cut at the new size too (review)
    from transforms.decode import FramePicker
    big = np.zeros((360, 640, 3), np.uint8)
    big[48:312] = 150
    picker = FramePicker(32, face_size=(320, 132), stored_size=(320, 180), area=(24 / 180, 24 / 180, 0.0, 0.0))
    rgb, face = picker._rgb(av.VideoFrame.from_ndarray(big, format="rgb24"))
    assert rgb.min() > 100 and face.shape == (132, 320, 3) and face.min() > 100
    whole = np.full((180, 320), 120, np.uint8)
    shade = whole.copy()
    shade[:, :60] = 0  # dark along one edge only: picture
    assert bars([whole] * 3) is None and bars([shade] * 3) is None
    assert bars([np.zeros((180, 320), np.uint8)] * 5) is None  # a fade, a black film: cannot tell
    noise = np.random.default_rng(1)
    samples = []
    for _ in range(5):
        frame = noise.integers(60, 200, (180, 320)).astype(np.uint8)
        frame[:30] = frame[-30:] = 0
        frame[160:166, 100:130] = 235  # a subtitle burnt into the bottom bar: sparse, it stays bar
        samples.append(frame)
    assert bars(samples) == pytest.approx((30 / 180, 30 / 180, 0.0, 0.0), abs=0.012)
    for frame in samples:  # the same edges dark in picture (0-20, changing with the scene): no bars (review)
        frame[:30], frame[-30:] = noise.integers(0, 20, (30, 320)), noise.integers(0, 20, (30, 320))
    assert bars(samples) is None
    assert crop_still(np.zeros((90, 160, 3), np.uint8)).shape == (90, 160, 3)


def test_a_still_image_is_not_a_film(tmp_path):
    """An image with a film's name (or none) fails at probe with a clear message, instead of scoring as a 0 s film."""
    from PIL import Image
    Image.new("RGB", (64, 48), (200, 10, 10)).save(tmp_path / "poster.png")
    (tmp_path / "poster.png").rename(tmp_path / "poster_scan")
    with pytest.raises(NotAFilm, match=r"a still image \(png_pipe\)"):
        probe_film(str(tmp_path / "poster_scan"))


def test_a_films_first_batches_ramp_up_to_the_batch_size(tmp_path):
    # The models start after FIRST_BATCH clips, not after a whole batch; every clip is still scored.
    import pyarrow.parquet as pq

    from transforms.film import FIRST_BATCH, ProcessFilm
    from transforms.score import FilmScorer, ScoreConfig
    sizes = []

    class Recording(FilmScorer):
        def score(self, clips):
            sizes.append(len(clips))
            return super().score(clips)

    film = make_film(tmp_path / "f.mp4", duration_s=14.0, fps=5)
    scorer = Recording(ScoreConfig(batch_size=8, modalities=("face",)))
    dofn = ProcessFilm(str(tmp_path / "out"), "r1", DecodeConfig(segment="window", window_s=1.0, image_size=32), scorer)
    [row] = list(dofn.process(job_for(film)))
    assert row["status"] == "ok" and row["n_clips"] == 14
    assert FIRST_BATCH == 4 and sizes == [4, 8, 2]
    assert all(r["emotion"] is not None for r in pq.read_table(row["output_file"]).to_pylist())


def test_decode_clip_is_the_pipeline_pass(tmp_path):
    # One clip decoded alone (a seek, then the same pass) gives the frames the whole-film pass gives it.
    from transforms.decode import decode_clip
    film = make_film(tmp_path / "f.mp4", duration_s=8.0, fps=10)
    whole = [c for c in decode_film(job_for(film), DecodeConfig(segment="window", window_s=2.0))
             if isinstance(c, DecodedClip)]
    target = whole[2]
    alone = decode_clip(str(film), target.spec.start_s, target.spec.end_s, DecodeConfig())
    assert np.array_equal(alone.frame_times, target.frame_times)
    assert np.array_equal(alone.frames, target.frames)
    assert abs(len(alone.audio) - len(target.audio)) <= 16
    wide = decode_clip(str(film), 1.0, 2.0, DecodeConfig(frames_per_clip=1), frame_width=64)
    assert wide.frames.shape[1:] == (42, 64, 3)  # the 96x64 film's 3:2 kept at that width (even height)
    # A clip after the picture's end holds its last frame in both passes (the report's thumbnails and --explain
    # decode it alone; before 2026-12-05 they showed no frame there).
    film = _stalled_film(tmp_path / "short_picture.mkv", 6.0, 30.0)
    cfg = DecodeConfig(segment="window", window_s=2.0, image_size=32)
    whole = [c for c in decode_film(job_for(film), cfg) if isinstance(c, DecodedClip)]
    for target in (whole[4], whole[12]):
        alone = decode_clip(str(film), target.spec.start_s, target.spec.end_s, cfg)
        assert len(alone.frames) and np.array_equal(alone.frame_times, target.frame_times)
        assert np.array_equal(alone.frames, target.frames)
        assert abs(len(alone.audio) - len(target.audio)) <= 16


@pytest.mark.slow
@needs_media
def test_asr_cue_source_plugs_into_the_pass():
    # The real Whisper cue source (transforms/transcribe.py) fed from this pass: utterances become the cues.
    import dataclasses
    from transforms.transcribe import AsrCueSourceFactory
    job = dataclasses.replace(job_for(MEDIA / "speech" / "jfk.flac"), needs_asr=True)
    factory = AsrCueSourceFactory(language="en", cpu_threads=2)
    stats = {}
    clips = [c for c in decode_film(job, DecodeConfig(), cue_source=factory(job), stats=stats)
             if isinstance(c, DecodedClip)]
    assert stats["asr_cues"] and all(c.spec.text_source == "asr" for c in clips if c.spec.text)
    text = " ".join(c.spec.text for c in clips if c.spec.text).lower()
    assert "ask not what your country can do for you" in text
    assert clips[0].spec.start_s == 0.0 and clips[-1].spec.end_s == pytest.approx(11.0, abs=0.1)
    assert all(c.spec.end_s - c.spec.start_s <= 8.0 + 1e-6 for c in clips)


def test_decode_ahead_keeps_order_raises_in_order_and_stops_with_the_consumer():
    import threading

    from transforms.film import decode_ahead
    assert list(decode_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("bad packet")
    got = []
    with pytest.raises(ValueError, match="bad packet"):
        for x in decode_ahead(failing(), depth=8):
            got.append(x)
    assert got == [1, 2]  # every item before the error arrives first

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1
    before = threading.active_count()
    for x in decode_ahead(endless(), depth=2):
        if x == 5:
            break
    assert threading.active_count() == before and len(produced) <= 5 + 2 + 2  # the producer stopped, bounded


def test_frames_no_other_frame_refers_to_are_not_decoded(tmp_path):
    """H.264 with B-frames: the pass skips the frames no other frame refers to (DecodeConfig.skip_nonref, the
    default), so fewer frames are decoded, and each sampled frame is the nearest reference frame: at most two
    frames from the one a full decode picks, showing the same second of film."""
    from testing.films import SECOND_COLOURS, make_colour_film
    film = make_colour_film(tmp_path / "b.mp4", seconds=6, fps=10)
    fast, _, fast_stats = decode(film, segment="window", window_s=2.0)
    full, _, full_stats = decode(film, segment="window", window_s=2.0, skip_nonref=False)
    assert full_stats["n_video_frames"] == 60 and fast_stats["n_video_frames"] < 45  # x264 puts B-frames in
    assert [len(c.frames) for c in fast] == [len(c.frames) for c in full] and len(fast) == 3
    for a, b in zip(fast, full):
        assert np.all(np.abs(a.frame_times - b.frame_times) <= 2 / 10 + 1e-6)
        for frame, t in zip(a.frames, a.frame_times):
            want = np.array(SECOND_COLOURS[int(t) % len(SECOND_COLOURS)])
            assert np.abs(frame.reshape(-1, 3).mean(0) - want).max() < 12  # the second it shows


@needs_media
def test_the_deblocking_filter_is_skipped_unless_asked_for():
    """Real H.264 (the Sintel trailer, which x264 deblocked): by default the pass skips the codec's loop filter
    (DecodeConfig.skip_loop_filter), which changes the pixels a little and nothing else: the same clips, the same
    frames decoded and sampled, the pictures within a few grey levels of the filtered ones (the reference frames
    carry the unfiltered edges until the next keyframe)."""
    film = MEDIA / "sintel" / "sintel_trailer.mp4"
    fast, _, fast_stats = decode(film, segment="window", window_s=4.0)
    full, _, full_stats = decode(film, segment="window", window_s=4.0, skip_loop_filter=False)
    assert fast_stats["n_video_frames"] == full_stats["n_video_frames"] and len(fast) == len(full) == 13
    diffs = []
    for a, b in zip(fast, full):
        assert np.array_equal(a.frame_times, b.frame_times) and np.array_equal(a.audio, b.audio)
        diffs.append(np.abs(a.frames.astype(np.int16) - b.frames.astype(np.int16)).mean())
    assert 0.1 < np.mean(diffs) < 3 and max(diffs) < 6


@needs_media
def test_a_stereo_film_is_heard_at_its_own_level():
    """The Sintel trailer's stereo sound mixed to one channel keeps a centred voice at its level ((L + R) / 2,
    transforms.mono), as faster-whisper decodes it and as the mono training sets sound; FFmpeg's float downmix
    was (L + R) x 0.707, 3 dB louder with peaks past full scale (1.47), which moved VAD's reading of speech."""
    from faster_whisper.audio import decode_audio as whisper_decode  # an independent decoder as the reference
    film = MEDIA / "sintel" / "sintel_trailer.mp4"
    clips, _, _ = decode(film, segment="window", window_s=4.0)
    ours = np.concatenate([c.audio for c in clips])
    theirs = whisper_decode(str(film), sampling_rate=16000)[:ours.size]
    assert np.abs(ours).max() < 1.1  # (the 16 kHz resampling rings a little past a full-scale peak)
    assert np.sqrt(np.mean(ours ** 2)) / np.sqrt(np.mean(theirs ** 2)) == pytest.approx(1.0, abs=0.02)


def test_one_decoding_thread_gives_the_same_clips(tmp_path):
    """Where the models score on the CPU a film up to 1080p30 decodes on one FFmpeg thread (DecodeConfig.from_options,
    decoding_threads): the same frames and audio, bit for bit, as FFmpeg's own threading; larger films and runs
    without CPU scoring (a GPU, --no_score) get FFmpeg's choice."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import FilmEmotionOptions

    film = make_film(tmp_path / "f.mp4", duration_s=6.0, size=(320, 240), video_codec="libx264")
    one, _, _ = decode(film, segment="window", window_s=2.0, decode_threads=1)
    auto, _, _ = decode(film, segment="window", window_s=2.0)
    assert len(one) == len(auto) == 3
    for a, b in zip(one, auto):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
        assert np.array_equal(a.frame_times, b.frame_times)

    def threads(*args):
        opts = PipelineOptions(["--input", "x", "--output", "y", *args]).view_as(FilmEmotionOptions)
        return DecodeConfig.from_options(opts).decode_threads

    assert threads() == BY_FILM and threads("--no_score") == 0 and threads("--device", "cuda") == 0
    assert threads("--decode_threads", "0") == 0 and threads("--decode_threads", "3") == 3

    def info(width, height, fps):  # what probing tells decoding_threads
        return FilmInfo(duration_s=60.0, width=width, height=height, fps=fps, video_codec="h264", audio_codec=None,
                        has_video=True, has_audio=False)

    by_film = DecodeConfig(decode_threads=BY_FILM)
    assert decoding_threads(by_film, info(1920, 1080, 24)) == 1 and decoding_threads(by_film, info(1280, 720, 60)) == 1
    assert decoding_threads(by_film, info(3840, 2160, 24)) == 0  # 4K: FFmpeg's threads
    assert decoding_threads(DecodeConfig(decode_threads=2), info(3840, 2160, 24)) == 2
    assert decoding_threads(by_film, probe_film(str(film))) == 1  # the 320x240 test film, as probed

    # benchmarks.throughput --decode_threads: its decode mode's config, and pipeline.run's option in the other modes
    import argparse

    from benchmarks import throughput
    from benchmarks._bench_work import decode_config
    lever = argparse.Namespace(decode_threads=2)
    assert decode_config(lever).decode_threads == 2 and decode_config(argparse.Namespace()).decode_threads == 0
    assert throughput.lever_args(lever) == ["--decode_threads", "2"] and threads(*throughput.lever_args(lever)) == 2


def test_the_throughput_benchmark_counts_cpu_seconds_and_prints_its_bounds(tmp_path):
    # benchmarks.throughput: each mode's CPU seconds (cores busy), whole against max(model, decode) and against the
    # CPU bound (model + decode CPU seconds over the cores), and a results file of older columns widened on append.
    import argparse
    import csv

    from benchmarks import _bench_work, throughput
    film = make_film(tmp_path / "f.mp4", duration_s=4.0, size=(320, 240), video_codec="libx264")
    res = _bench_work.decode(str(film), argparse.Namespace())
    assert res["clips"] >= 1 and 0 < res["cpu_s"] and res["wall_s"] > 0

    rows = {"whole": {"mode": "whole", "wall_s": 9.0, "cpu_s": 15.0, "host_cpus": 2, "film_wall_s": 8.0},
            "model": {"mode": "model", "wall_s": 6.0, "cpu_s": 11.0, "host_cpus": 2},
            "decode": {"mode": "decode", "wall_s": 3.0, "cpu_s": 4.0, "host_cpus": 2}}
    line = throughput._bounds(list(rows.values()))
    assert "max(model, decode) 6.00 s" in line and "(11.00 + 4.00 CPU-s on 2 cores) 7.50 s" in line
    assert "whole 9.00 s = 1.50x the larger, 1.20x the CPU bound" in line and "8.00 s = 1.33x / 1.07x" in line
    assert throughput._bounds([rows["whole"], rows["model"]]) == ""

    path = tmp_path / "throughput.csv"
    old = throughput.CSV_FIELDS[:-2]  # a file from before cpu_s and film_wall_s
    path.write_text(",".join(old) + "\n" + ",".join("1" for _ in old) + "\n")
    throughput._write_csv([{k: "2" for k in throughput.CSV_FIELDS} | {"cores_busy": 1.5}], path)
    with path.open(newline="") as f:
        back = list(csv.DictReader(f))
    assert list(back[0]) == list(throughput.CSV_FIELDS) and len(back) == 2
    assert back[0]["cpu_s"] == "" and back[0]["film"] == "1" and back[1]["cpu_s"] == "2"


def test_a_recording_whose_clock_restarts_is_decoded_to_its_end(tmp_path):
    # Two 20 s MPEG-TS captures joined: the clock restarts at 20 s and the header says 20 s. Before, the film
    # was 'ok' with clips for its first half only; now times continue across the restart and the plan goes on.
    clips, errors, stats = decode(make_joined_recording(tmp_path / "recording.ts"))
    check_clips(clips)
    assert clips[-1].spec.end_s == pytest.approx(40.0, abs=0.3) and stats["media_end_s"] == pytest.approx(40.0, abs=0.3)
    assert all(len(c.frames) == frames_for(c.spec.start_s, c.spec.end_s, 4) for c in clips)
    assert all(c.audio.size >= 0.9 * (c.spec.end_s - c.spec.start_s) * SAMPLE_RATE for c in clips)
    # each piece has its own colour scenes: the second piece's frames are its own, not the first's again
    assert {e.error_type for e in errors} == {"TimestampReset", "DurationUnderstated"}
    assert not any(e.fatal for e in errors)
    # Its subtitles' lines after the header's duration become clips with their text, as the others do.
    write_srt(tmp_path / "recording.en.srt", [(5.0, 7.0, "Before the join."), (26.0, 28.5, "After the join.")])
    clips, _, _ = decode(tmp_path / "recording.ts")
    check_clips(clips)
    assert [(c.spec.text, round(c.spec.start_s, 1)) for c in clips if c.spec.text] == [
        ("Before the join.", 5.0), ("After the join.", 26.0)]
    assert clips[-1].spec.end_s == pytest.approx(40.0, abs=0.3)
    # A line across the header's end is read once, by the clip before it (before 2026-12-06 the continued plan
    # read it again: "Across the join." twice, the second time with itself as context).
    write_srt(tmp_path / "recording.en.srt", [(5.0, 7.0, "Before the join."), (19.0, 21.5, "Across the join."),
                                             (26.0, 28.5, "After the join.")])
    clips, _, _ = decode(tmp_path / "recording.ts")
    check_clips(clips)
    assert [c.spec.text for c in clips if c.spec.text] == ["Before the join.", "Across the join.", "After the join."]


def test_the_sound_goes_on_when_its_format_changes(tmp_path):
    # A capture whose sound changes rate at a join (a programme's 48 kHz, then 44.1 kHz adverts; a 5.1 -> stereo
    # change takes the same path). Before, FFmpeg's resampler refused the first frame of the new format and the
    # film had no sound from there on.
    clips, errors, _ = decode(make_joined_recording(tmp_path / "capture.ts", piece_s=6.0, sample_rates=(48000, 44100)),
                              segment="window", window_s=2.0, image_size=32)
    assert clips[-1].spec.end_s == pytest.approx(12.0, abs=0.3)
    assert all(c.audio.size >= 0.9 * (c.spec.end_s - c.spec.start_s) * SAMPLE_RATE for c in clips)
    assert "AudioDecodeError" not in {e.error_type for e in errors}


def test_timeline_mends_restarts_and_trusts_forward_gaps_unless_the_format_jumps():
    from transforms.decode import Timeline
    seq = [0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 100.0, 101.0, 101.2]  # a restart, a leap, a small step back
    ts = Timeline(forward_s=10.0)  # MPEG-TS: its clock may leap
    assert [ts.time(t, 1.0) for t in seq] == pytest.approx([0, 1, 2, 3, 4, 5, 6, 7, 8, 8.2]) and ts.resets == [5, 7]
    mkv = Timeline()  # other formats: a forward gap is real time (a paused recording), only restarts are mended
    assert [mkv.time(t, 1.0) for t in seq] == pytest.approx([0, 1, 2, 3, 4, 5, 6, 105, 106, 106.2]) and mkv.resets == [5]
    # One stray timestamp (a damaged packet), back or forward, is placed where the stream had got to; the clock stays.
    stray = Timeline(forward_s=10.0)
    assert [stray.time(t, 1.0) for t in [0, 1, 2, 3, 4, 1.5, 5, 6, 300, 7, 8]] == pytest.approx(
        [0, 1, 2, 3, 4, 5, 5, 6, 7, 7, 8]) and not stray.resets


def test_a_frame_held_for_seconds_is_not_a_restart(tmp_path):
    # A VFR encode whose title card is one frame held 5 s (frames at 0-2 s, then from 7 s). Before, the 5 s step
    # became the expected frame duration, every next frame looked 1 s "back", and the 10 s film ran to 125 s.
    times = [i * 0.04 for i in range(50)] + [7.0 + i * 0.04 for i in range(75)]
    film = encode_film(tmp_path / "held.mkv", paint=lambda i, t: np.full((64, 96, 3), int(t * 30) % 255, np.uint8),
                       frame_times=times, fps=25, vfr=True, video_codec="h264", audio=speech_like(10.0))
    clips, errors, stats = decode(film, segment="window", window_s=4.0, image_size=32)
    assert not errors and stats["media_end_s"] == pytest.approx(10.0, abs=0.1)
    assert [(c.spec.start_s, round(c.spec.end_s, 1)) for c in clips] == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)]
    from transforms.decode import Timeline
    line = Timeline()
    assert [line.time(t, 5.0) for t in (0.0, 5.0, 5.04, 5.08)] == [0.0, 5.0, 5.04, 5.08] and not line.resets


def test_a_damaged_stretch_costs_only_itself(tmp_path):
    # Random bytes over 5 % of a 20 s h264 + aac mp4, halfway in. Before, five bad audio packets in a row ended
    # the sound for the rest of the film, and the frames after the gap read as 51 clock restarts (102 s of clips).
    source = encode_film(tmp_path / "whole.mp4", paint=lambda i, t: np.full((240, 320, 3), (i * 7) % 255, np.uint8),
                         frame_times=[i / 25 for i in range(500)], fps=25, size=(320, 240), video_codec="h264",
                         audio=speech_like(20.0))
    # (one decoding thread, as pipeline.run decodes a film this small on CPU: FFmpeg's many threads meet damaged data
    # in an order that varies from run to run)
    clips, errors, stats = decode(make_damaged(tmp_path / "damaged.mp4", source), decode_threads=1, segment="window",
                                  window_s=4.0, image_size=32)
    assert stats["media_end_s"] == pytest.approx(20.0, abs=0.1) and not stats["audio_failed"]
    assert [c.spec.start_s for c in clips] == [0.0, 4.0, 8.0, 12.0, 16.0] and all(len(c.frames) == 4 for c in clips)
    assert all(c.audio.size == 4 * SAMPLE_RATE and np.abs(c.audio).mean() > 0.01 for c in clips)  # sound after it
    # One row a damaged stretch: random bytes can hold a packet that decodes, which splits a stretch in two, and
    # where they fall among the packets follows the encoder's (threaded) output, so the count may be 2 or 3.
    assert {e.error_type for e in errors} == {"AudioPacketError", "VideoPacketError"} and len(errors) <= 4
    assert not any(e.fatal for e in errors)
    audio_row = next(e.message for e in errors if e.error_type == "AudioPacketError")
    assert audio_row.startswith("audio undecodable from 10.") and "silent there" in audio_row
    # The clips of the stretch are marked (the picture to its next whole key frame, after 12 s here)
    assert [c.damaged for c in clips] == [(), (), ("audio", "video"), ("audio", "video"), ()]
    # Damage in the mp4's index (at its end): the demuxer stopped at 2 s of a 20 s film, at a sample placed past
    # the file's end (before 2026-12-05 the film was 'ok' with one clip and no row; then a MediaEndedEarly row).
    # Since 2026-12-06 it is read on past each such sample: the whole film, a ReadResumed row, the clips where
    # samples were lost marked, and the last clip's sound that of the undamaged film.
    whole, _, _ = decode(source, decode_threads=1, segment="window", window_s=4.0, image_size=32)
    clips, errors, stats = decode(make_damaged(tmp_path / "index.mp4", source, at=0.99, share=0.005), decode_threads=1,
                                  segment="window", window_s=4.0, image_size=32)
    assert stats["media_end_s"] == pytest.approx(20.0, abs=0.1) and len(clips) == 5
    assert "ReadResumed" in {e.error_type for e in errors} and not any(e.fatal for e in errors)
    assert clips[0].damaged and not clips[-1].damaged
    assert np.corrcoef(clips[-1].audio, whole[-1].audio)[0, 1] > 0.95
    # The same damage in a broadcast capture (MPEG-TS): its demuxer resyncs and stray timestamps come out of the
    # damaged stretch. Before, each read as a clock restart and the rest of the film moved (20 s -> 22.6 s).
    source = encode_film(tmp_path / "whole.ts", paint=lambda i, t: np.full((240, 320, 3), (i * 7) % 255, np.uint8),
                         frame_times=[i / 25 for i in range(500)], fps=25, size=(320, 240), video_codec="h264",
                         audio=speech_like(20.0))
    clips, errors, stats = decode(make_damaged(tmp_path / "damaged.ts", source), decode_threads=1, segment="window",
                                  window_s=4.0, image_size=32)
    assert stats["media_end_s"] == pytest.approx(20.0, abs=0.2) and "TimestampReset" not in {e.error_type for e in errors}
    assert [round(c.spec.start_s) for c in clips] == [0, 4, 8, 12, 16]
    # No packet failed there: the demuxer skipped the damaged data unseen. The hole it left in the sound is a row
    # (before 2026-12-05 a capture that lost a second of its sound and picture was 'ok' without a word).
    gaps = [e.message for e in errors if e.error_type == "AudioGap"]
    assert len(gaps) == 1 and 8 < float(gaps[0].split()[3].rstrip("s")) < 12 and not any(e.fatal for e in errors)
    # The picture lost a stretch there too: rows since 2026-12-06 (PictureGap), and the clips there are marked
    assert "PictureGap" in {e.error_type for e in errors} and clips[2].damaged == ("audio", "video")
    assert clips[0].damaged == clips[1].damaged == clips[4].damaged == ()


def test_frames_the_decoder_concealed_mark_their_clips_up_to_the_next_key_frame(tmp_path):
    # Eight bytes of one P frame's data flipped, at 10.3 s of a 20 s h264 film with a key frame every 2 s: FFmpeg
    # raises nothing, it conceals the damage and flags the frame. Before 2026-12-06 nothing said so: the clip's
    # label was read off invented pixels like any other. Now a row says where, and the clip is marked.
    import av
    texture = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    source = encode_film(tmp_path / "whole.mp4", paint=lambda i, t: np.roll(texture, 3 * i, axis=1),
                         frame_times=[i / 25 for i in range(500)], fps=25, size=(320, 240), video_codec="h264",
                         gop_size=50, audio=speech_like(20.0))
    with av.open(str(source)) as c:
        packet = next(p for p in c.demux(c.streams.video[0])
                      if p.size and p.pts * p.time_base >= 10.3 and not p.is_keyframe)
        at, size = packet.pos, packet.size
    data = bytearray(source.read_bytes())
    for k in range(size // 2, size // 2 + 8):
        data[at + k] ^= 0xFF
    damaged = tmp_path / "flipped.mp4"
    damaged.write_bytes(bytes(data))
    whole, errors, _ = decode(source, decode_threads=1, segment="window", window_s=2.0, image_size=32)
    assert not errors and not any(c.damaged for c in whole)
    clips, errors, stats = decode(damaged, decode_threads=1, segment="window", window_s=2.0, image_size=32)
    assert [e.error_type for e in errors] == ["ConcealedFrames"] and not errors[0].fatal
    assert errors[0].message.startswith("1 picture frame(s) decoded from damaged data (first at 10.3")
    assert [c.damaged for c in clips] == [()] * 5 + [("video",)] + [()] * 4 and stats["damaged_clips"] == 1


def test_damaged_spans_heal_at_a_whole_key_frame():
    from transforms.decode import DamagedSpans
    spans = DamagedSpans()
    spans.on_picture(1.0, corrupt=True, key=False)
    spans.on_picture(2.0, corrupt=True, key=True)  # a key frame that is itself damaged heals nothing
    spans.on_picture(2.5, corrupt=False, key=False)
    assert spans.streams(2.4, 3.0) == ("video",)
    spans.on_picture(3.0, corrupt=False, key=True)
    assert spans.streams(3.0, 4.0) == () and spans.streams(0.0, 1.0) == () and spans.streams(0.5, 1.5) == ("video",)
    spans.on_picture(5.0, corrupt=True, key=False)  # no key frame for a long time: healed HEAL_S after it
    spans.on_picture(5.0 + DamagedSpans.HEAL_S + 1, corrupt=False, key=False)
    assert spans.streams(5.0 + DamagedSpans.HEAL_S + 0.5, 30.0) == () and spans.n_concealed == 3
    spans.begin("audio", 20.0, failed=True)  # sound packets failing, not yet resumed: every clip after it
    assert spans.streams(25.0, 27.0) == ("audio",)


@needs_media
def test_a_masters_dialogue_is_heard_on_its_centre_channel_track(tmp_path):
    # A deliverable with one mono track per channel (L, R, C, LFE, Ls, Rs): the dialogue is on C, the third.
    # Before, the film was heard on L (music): no line to transcribe, no voice for the speech branch.
    from testing.films import make_channel_master, synthetic_music
    from transforms.decode import decode_audio
    speech = decode_audio(str(MEDIA / "speech" / "jfk.flac"))
    n = speech.size
    music = synthetic_music(n / SAMPLE_RATE)[:n]
    lfe = (0.3 * np.sin(2 * np.pi * 50 * np.arange(n) / SAMPLE_RATE)).astype(np.float32)
    film = make_channel_master(tmp_path / "master.mov", [music, music[::-1].copy(), speech, lfe, music / 2, music / 2])
    assert probe_film(str(film)).audio_stream == 3  # stream 0 is the video
    clips, errors, _ = decode(film, segment="window")
    heard = np.concatenate([c.audio for c in clips])[:n]
    assert not errors and np.corrcoef(heard, speech[:heard.size])[0, 1] > 0.95  # (PCM s16, clip by clip)
    assert abs(np.corrcoef(heard, music[:heard.size])[0, 1]) < 0.1
    # Without a voice on any track, or with fewer than three mono tracks, the usual first track stays.
    assert probe_film(str(make_channel_master(tmp_path / "m.mov", [music, music / 2, lfe]))).audio_stream is None
    assert probe_film(str(make_channel_master(tmp_path / "s.mov", [music, speech]))).audio_stream is None


def _level_db(heard: np.ndarray, voice: np.ndarray) -> float:
    n = min(heard.size, voice.size)
    return 10 * np.log10(np.mean(heard[:n].astype(np.float64) ** 2) / np.mean(voice[:n].astype(np.float64) ** 2))


def _film_sound(path) -> tuple[np.ndarray, list]:
    clips, errors, _ = decode(path, segment="window", window_s=2.0)
    return np.concatenate([c.audio for c in clips]), errors


@pytest.mark.parametrize("layout, codec, suffix", [("5.1", "aac", "mp4"), ("5.1(side)", "aac", "mkv"),
                                                   ("7.1", "pcm_s16le", "mkv")])
def test_a_voice_on_the_centre_channel_is_heard_as_a_stereo_mix_gives_it(tmp_path, layout, codec, suffix):
    # ITU-R BS.775's fold: the centre at -3 dB, as the same master's stereo mix gives a centred voice. FFmpeg's
    # normalised matrix gave it at -10.7 dB (5.1) and -12.9 dB (7.1) before 2026-12-06, quieter than the speech
    # classifier reads quiet voices right. PCM in Matroska names no channels (FFmpeg's order for 8 is 7.1's).
    import av
    voice = speech_like(2.0)
    channels = np.zeros((len(av.AudioLayout(layout).channels), voice.size), np.float32)
    channels[2] = voice  # FC is the third channel of every film layout
    film = encode_film(tmp_path / f"centre.{suffix}", paint=lambda i, t: np.zeros((64, 96, 3), np.uint8),
                       frame_times=[i / 10 for i in range(20)], audio=channels, audio_layout=layout,
                       audio_codec=codec)
    heard, errors = _film_sound(film)
    assert not errors and _level_db(heard, voice) == pytest.approx(-3.0, abs=0.5)
    assert np.corrcoef(heard[:voice.size - 2000], voice[:voice.size - 2000])[0, 1] > 0.95


def test_stereo_whose_channels_cancel_is_heard_with_a_row(tmp_path):
    # One channel wired inverted (L = -R): (L + R) / 2 is silence, the film had no voice and no line, without a
    # word, before 2026-12-06. A stereo mix with a centred voice keeps (L + R) / 2, at the voice's level.
    voice = speech_like(3.0)

    def stereo(name, right):
        return encode_film(tmp_path / name, paint=lambda i, t: np.zeros((64, 96, 3), np.uint8),
                           frame_times=[i / 10 for i in range(30)], audio=np.stack([voice, right]),
                           audio_layout="stereo")

    heard, errors = _film_sound(stereo("inverted.mkv", -voice))
    assert _level_db(heard, voice) == pytest.approx(0.0, abs=0.5)
    assert [e.error_type for e in errors] == ["StereoCancelled"] and not errors[0].fatal
    heard, errors = _film_sound(stereo("centred.mkv", voice))
    assert not errors and _level_db(heard, voice) == pytest.approx(0.0, abs=0.5)


def test_the_films_own_voices_are_heard_among_its_tracks(tmp_path):
    # A commentary or a music-and-effects mix named only by its title or its clean_effects flag, a dub flagged
    # default before the original: each was heard and transcribed as the film before 2026-12-06.
    import av
    flag = av.stream.Disposition
    voice, other = speech_like(3.0), speech_like(3.0, f0=120.0)

    def chosen(name, tags):
        tracks = [other, voice]
        film = encode_film(tmp_path / name, paint=lambda i, t: np.zeros((64, 96, 3), np.uint8),
                           frame_times=[i / 10 for i in range(30)], audio=tracks[0], more_audio=tracks[1:],
                           audio_tags=tags)
        with av.open(str(film)) as container:
            info = probe_film(str(film))
            stream = container.streams[info.audio_stream] if info.audio_stream is not None else None
            from transforms.probe import main_audio_stream
            return (stream or main_audio_stream(container)).index - 1  # (stream 0: the picture)

    eng = {"language": "eng"}
    assert chosen("title.mkv", [{"metadata": {"title": "Director's Commentary", **eng}}, {"metadata": eng}]) == 1
    for name in ("title.mp4", "title.mov"):  # the title in the track's udta, read back as `name` (missed before 12-07)
        assert chosen(name, [{"metadata": {"title": "Director's Commentary", **eng}}, {"metadata": eng}]) == 1
    assert chosen("ad.mkv", [{"metadata": {"title": "English AD", **eng}}, {"metadata": eng}]) == 1
    assert chosen("m_e.ts", [{"disposition": flag.clean_effects}, {}]) == 1
    assert chosen("original.mkv", [{"metadata": {"language": "ger"}, "disposition": flag.default},
                                   {"metadata": eng, "disposition": flag.original}]) == 1
    assert chosen("plain.mkv", [{"metadata": {"title": "Padded", **eng}}, {"metadata": eng}]) == 0  # no word "AD"


@needs_media
def test_mono_tracks_in_three_languages_are_dubs_not_channels(tmp_path):
    # A classic film's release: its mono original first and default, two mono dubs with more speech in them. Taken
    # for a master's channels, the dub with the most speech was heard before 2026-12-06; channels share a language.
    import av
    from transforms.decode import decode_audio
    speech = decode_audio(str(MEDIA / "speech" / "jfk.flac"))[:6 * SAMPLE_RATE]
    own = speech.copy()
    own[2 * SAMPLE_RATE:] = 0  # less speech than either dub
    tags = [{"metadata": {"language": "eng"}, "disposition": av.stream.Disposition.default},
            {"metadata": {"language": "ger"}}, {"metadata": {"language": "spa"}}]

    def film(name, tags):
        return encode_film(tmp_path / name, paint=lambda i, t: np.zeros((64, 96, 3), np.uint8),
                           frame_times=[i / 10 for i in range(60)], audio=own, more_audio=[speech, speech],
                           audio_codec="pcm_s16le", audio_tags=tags)

    assert probe_film(str(film("dubs.mkv", tags))).audio_stream is None  # main_audio_stream's: the first
    assert probe_film(str(film("channels.mkv", []))).audio_stream == 2  # untagged: channels, the most speech


def test_damaged_media_benchmark_prints_its_table(tmp_path, capsys):
    from benchmarks import damaged_media
    table = damaged_media.main(["--seeds", "1", "--out", str(tmp_path)])
    assert len(table) == 12 and all(r["whole"] == r["copies"] == r["last_sound"] == 1 for r in table), table
    assert "| mp4 | 10% from 50% | 1 of 1 |" in capsys.readouterr().out


@needs_media
def test_a_seek_is_not_damage(caplog):
    # decode_clip seeks: the first audio packet after it does not decode on its own (GRID's MPEG-PS). That is not
    # a damaged stretch, so the report's thumbnails and --explain log no warning for it.
    from transforms.decode import decode_clip
    with caplog.at_level("WARNING", logger="transforms.decode"):
        clip = decode_clip(str(MEDIA / "grid" / "sbwe5n.mpg"), 1.0, 2.0)
    assert len(clip.frames) and clip.audio.size == SAMPLE_RATE and "undecodable" not in caplog.text


def test_a_mono_16_bit_track_feeds_both_resamplers(tmp_path):
    # The pass resamples each audio frame twice when it transcribes: for the clips at the film's rate, and for the
    # recogniser at 16 kHz. A mono 16-bit 48 kHz track (a WAV recording, an MXF master's channel: FFmpeg reads
    # their layout as "1 channels") needs no change for the first; FFmpeg's resampler then left the frame unusable
    # to the second, which ended the film's sound ("audio resampling failed") before 2026-12-05.
    import av

    from transforms.mono import MonoResampler
    wave = (np.sin(np.arange(48000) * 2 * np.pi * 220 / 48000) * 8000).astype(np.int16)
    with av.open(str(tmp_path / "mono48k.wav"), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=48000)
        stream.layout = "mono"
        for i in range(0, 48000, 1920):
            frame = av.AudioFrame.from_ndarray(wave[None, i:i + 1920], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    film_rate, speech = MonoResampler(48000), MonoResampler(SAMPLE_RATE)
    got_film, got_speech = [], []
    with av.open(str(tmp_path / "mono48k.wav")) as film:
        for frame in film.decode(audio=0):
            got_film += film_rate.resample(frame)
            got_speech += speech.resample(frame)
    got_film += film_rate.resample(None)
    got_speech += speech.resample(None)
    assert np.array_equal(np.concatenate(got_film), wave.astype(np.float32) / 32768.0)
    assert abs(np.concatenate(got_speech).size - SAMPLE_RATE) < 100


def test_a_photo_is_read_upright():
    # A phone photo is stored sideways with an EXIF orientation (6: turn 90 degrees clockwise to view). Before, the
    # `frames:` and `faces:` readers gave the stored pixels, so a face lay on its side for the detector.
    import io

    from PIL import Image

    from transforms.decode import decode_image
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the left of the stored pixels: on top once turned
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", exif=exif, quality=95)
    upright = decode_image(buf.getvalue())
    assert upright.shape == (60, 40, 3) and upright[:, :5].mean() < 60 and upright[:5].mean() > 200


def test_a_video_track_that_gives_no_picture_is_said(tmp_path):
    # Every video packet replaced by random bytes: H.264 drops them without an error, so the film was 'ok' with no
    # frame in any clip and not a word in the errors table (before 2026-12-05). The sound is still heard.
    import av
    rng = np.random.default_rng(0)

    def garbage(packet):
        junk = av.Packet(rng.integers(0, 256, max(packet.size, 64), dtype=np.uint8).tobytes())
        junk.pts, junk.dts, junk.time_base, junk.stream = packet.pts, packet.dts, packet.time_base, packet.stream
        return junk

    film = encode_film(tmp_path / "no_picture.mkv", paint=lambda i, t: np.full((64, 96, 3), i % 255, np.uint8),
                       frame_times=[i / 10 for i in range(60)], fps=10, video_codec="h264", audio=speech_like(6.0),
                       edit_video_packet=garbage)
    clips, errors, _ = decode(film, segment="window", window_s=2.0, image_size=32)
    assert len(clips) == 3 and all(len(c.frames) == 0 and c.audio.size >= 32000 for c in clips)
    assert [e.error_type for e in errors] == ["VideoDecodeError"] and not errors[0].fatal


def _stalled_film(path, picture_s: float, sound_s: float, **kw) -> Path:
    return encode_film(path, paint=lambda i, t: np.full((64, 96, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / 10 for i in range(int(picture_s * 10))], fps=10, size=(96, 64),
                       audio=speech_like(sound_s), **kw)


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_a_picture_that_ends_before_its_sound_is_held_and_its_clips_go_out_as_read(tmp_path, suffix):
    # 20 s of picture under 80 s of sound (a podcast over a title card, a picture that ends before the credits'
    # music). A player holds the last frame; so do the clips. Before 2026-12-05 the clips after the picture's end
    # had no frames and waited for the end of the film, every second of its audio kept for them. An MPEG-TS
    # declares no end for the picture (FFmpeg finds none of its packets in the file's last stretch, where it looks
    # for every stream's end): it is taken as ended there, not waited for (before: lag and sound held 58 and 60 s).
    from transforms.decode import STALL_S
    clips, errors, stats = decode(_stalled_film(tmp_path / f"short_picture{suffix}", 20.0, 80.0), segment="window",
                                  window_s=2.0, image_size=32)
    assert not errors and len(clips) == 40 and all(len(c.frames) for c in clips)
    # the last frame, at its own time (the decoder gives the last two only at the end of the file; the TS muxer
    # delays its packets by 64 ms)
    assert all(np.all((c.frame_times >= 19.5) & (c.frame_times < 20.1)) for c in clips[10:])
    assert all(c.audio.size == 2 * SAMPLE_RATE for c in clips[:-1]) and clips[-1].audio.size >= 2 * SAMPLE_RATE
    assert stats["max_emit_lag_s"] < STALL_S + 2.5 and stats["max_audio_buffered_s"] < STALL_S + 2.5  # was 60, 60
    # One frame under a minute of sound (a radio play over its title card). Its threaded decoder keeps the frame
    # until it is drained: at the picture's declared end now, so every clip shows it (before 2026-12-05 only at
    # the end of the file: the clips before the last STALL_S went out without it).
    clips, _, _ = decode(_stalled_film(tmp_path / f"one_frame{suffix}", 0.1, 60.0), segment="window",
                         window_s=2.0, image_size=32)
    assert len(clips) == 30 and all(len(c.frames) == 2 for c in clips)


def test_a_broadcast_capture_whose_picture_drops_out_keeps_it_in_step_with_its_sound(tmp_path):
    # An MPEG-TS whose picture stops for 30 s while its sound goes on (a capture that lost its video). A TS's clock
    # may restart (recordings joined from pieces), and a forward jump of more than 10 s read as one: before
    # 2026-12-05 the picture after the dropout was moved 30 s back, out of step with its sound, with a
    # TimestampReset row. The sound is already where the picture comes back: a hole, not a restart.
    film = encode_film(tmp_path / "dropout.ts", paint=lambda i, t: np.full((64, 96, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / 25 for i in range(500)] + [50 + i / 25 for i in range(500)], fps=25, vfr=True,
                       size=(96, 64), video_codec="h264", gop_size=50, audio=speech_like(70.0))
    clips, errors, stats = decode(film, segment="window", window_s=2.0, image_size=32)
    assert len(clips) == 35 and stats["media_end_s"] == pytest.approx(70.0, abs=0.2)
    assert all(np.all(c.frame_times == pytest.approx(c.spec.start_s + np.array([0.5, 1.5]), abs=0.15))
               for c in clips[:10] + clips[25:])  # the picture where it is, before and after the dropout
    assert all(np.all((c.frame_times < 20.1) | (c.frame_times > 50)) for c in clips[10:25])  # the dropout
    # The dropout is a row, and its clips are marked: the frame they show is the one before it, held (before
    # 2026-12-06 nothing said the picture was missing there)
    assert [e.error_type for e in errors] == ["PictureGap"]
    hole = [float(w.rstrip("s:")) for w in errors[0].message.split()[3:6:2]]
    assert hole == pytest.approx([20.0, 50.0], abs=0.1)
    assert [i for i, c in enumerate(clips) if c.damaged] == list(range(10, 25))
    assert all(c.damaged == ("video",) for c in clips[10:25])


def test_a_picture_the_probe_found_no_size_for_keeps_its_shape_for_faces(tmp_path):
    # An MPEG-TS of one mpeg4 frame: the probe does not reach it, so the film's size is unknown (0 x 0). Before
    # 2026-12-05 making the face detector's copy divided by it and the film failed; now the copy keeps the
    # frame's own shape (96 x 64 fitted into the 16:9 copy, black at the sides).
    film = encode_film(tmp_path / "one.ts", paint=lambda i, t: np.full((64, 96, 3), 200, np.uint8), frame_times=[0.0],
                       fps=10, size=(96, 64), audio=speech_like(30.0))
    assert probe_film(str(film)).width == 0
    clips, errors, _ = decode(film, segment="window", window_s=2.0, image_size=32, face_width=64)
    assert not errors and len(clips) == 15 and all(len(c.frames) == 2 for c in clips)
    face = clips[5].face_frames[0]
    assert face.shape == (36, 64, 3) and (face.sum(axis=(0, 2)) > 0).sum() == 54  # 96:64 at 36 high


def test_sound_that_ends_before_the_picture_does_not_hold_the_clips_back(tmp_path):
    # 20 s of sound, 80 s of picture (a silent reel after a scored opening). Before 2026-12-05 the clips after the
    # sound's end waited for the end of the film with their frames in memory (an hour: gigabytes).
    from transforms.decode import STALL_S
    clips, errors, stats = decode(_stalled_film(tmp_path / "short_sound.mkv", 80.0, 20.0), segment="window",
                                  window_s=2.0, image_size=32)
    assert not errors and len(clips) == 40 and all(len(c.frames) == 2 for c in clips)
    # (the encoder's last audio packets are written at the end of this file: clip 9 goes out without them)
    assert all(c.audio.size == 2 * SAMPLE_RATE for c in clips[:9]) and all(c.audio.size == 0 for c in clips[11:])
    assert stats["max_emit_lag_s"] < STALL_S + 2.5  # was 60


def test_a_long_hole_in_the_picture_or_the_sound_does_not_hold_the_other_in_memory(tmp_path):
    # 3 minutes with no picture (a VFR encode holding a still, a damaged stretch) or no sound (packets lost) in
    # the middle of a film, the stream read on after it. Before 2026-12-05 the clips of the hole waited for the
    # stream to come back, the other stream's sound or frames kept meanwhile (an hour-long hole: an hour of it).
    from transforms.decode import LONG_STALL_S
    film = encode_film(tmp_path / "picture_hole.mkv", paint=lambda i, t: np.full((64, 96, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / 10 for i in range(200)] + [200 + i / 10 for i in range(200)], fps=10,
                       vfr=True, size=(96, 64), audio=speech_like(220.0))
    clips, errors, stats = decode(film, segment="window", window_s=2.0, image_size=32)
    assert not errors and len(clips) == 110 and all(len(c.frames) == 2 for c in clips)
    # the last frame held (the clips in the hold's last STALL_S take the nearer frame, the one after the hole)
    assert all(np.all((c.frame_times > 19.5) & (c.frame_times < 20)) for c in clips[10:90])
    assert all(np.all(c.frame_times >= 200) for c in clips[100:])  # the picture read on where it resumes
    assert all(c.audio.size == 2 * SAMPLE_RATE for c in clips[:-1])
    assert stats["max_audio_buffered_s"] < LONG_STALL_S + 2.5 and stats["max_emit_lag_s"] < LONG_STALL_S  # was 180
    film = encode_film(tmp_path / "sound_hole.mkv", paint=lambda i, t: np.full((64, 96, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / 10 for i in range(2200)], fps=10, size=(96, 64), audio=speech_like(220.0),
                       audio_hole=(20.0, 200.0))
    clips, errors, stats = decode(film, segment="window", window_s=2.0, image_size=32)
    assert len(clips) == 110 and all(len(c.frames) == 2 for c in clips)
    assert [e.error_type for e in errors] == ["AudioGap"] and "from 20.0" in errors[0].message
    assert all(not np.abs(c.audio).any() for c in clips[11:100])  # no sound there (none, or silence)
    assert all(c.audio.size == 2 * SAMPLE_RATE and np.abs(c.audio).mean() > 0.01 for c in clips[101:-1])
    assert stats["max_emit_lag_s"] <= LONG_STALL_S  # was 178: three minutes of frames kept


def test_a_capture_whose_picture_changes_shape_keeps_each_parts_shape_for_faces(tmp_path):
    # A 16:9 programme joined with a 4:3 advert (a broadcast capture, `cat` of two pieces). The face detector's
    # copy of a 4:3 frame is fitted inside the 16:9 frame, not stretched to it (before 2026-12-05: 33 % wide).
    def square(size):  # a white square on black, a third of the frame high
        def paint(i, t):
            w, h = size
            img, s = np.zeros((h, w, 3), np.uint8), h // 3
            img[h // 2 - s // 2:h // 2 + s // 2, w // 2 - s // 2:w // 2 + s // 2] = 255
            return img
        return paint
    parts = [encode_film(tmp_path / f"part{i}.ts", paint=square(size), frame_times=[k / 10 for k in range(40)],
                         fps=10, size=size, audio=speech_like(4.0)).read_bytes()
             for i, size in enumerate([(320, 180), (240, 180)])]
    film = tmp_path / "joined.ts"
    film.write_bytes(b"".join(parts))
    clips, _, _ = decode(film, segment="window", window_s=2.0, image_size=32, face_width=320)
    faces = [f for c in clips for f in c.face_frames]
    assert len(clips) == 4 and len(faces) == 8 and faces[0].shape == (180, 320, 3)
    for f in faces:
        ys, xs = np.nonzero(f[..., 0] > 128)
        assert (np.ptp(xs) + 1) / (np.ptp(ys) + 1) == pytest.approx(1.0, abs=0.12)
    assert faces[-1][:, :30].max() < 20  # the 4:3 part's frames have black bars at the sides


def test_subtitle_lines_after_the_films_end_are_reported(tmp_path):
    # A sidecar for a longer cut: its last line starts after this 10 s film has ended. It is in no clip, and a row
    # says so (before 2026-12-05 the lines were left out without a word).
    film = make_film(tmp_path / "film.mp4", duration_s=10.0)
    write_srt(tmp_path / "film.srt", [(1.0, 3.0, "First line here."), (8.5, 9.5, "Near the end."),
                                      (12.0, 14.0, "After the film ended.")])
    for segment in ("subtitle", "window", "shot"):
        clips, errors, _ = decode(film, segment=segment, image_size=32)
        assert "After the film" not in " ".join(c.spec.text or "" for c in clips)
        assert [(e.stage, e.error_type, e.fatal) for e in errors] == [("subtitles", "LinesPastEnd", False)]
        assert errors[0].message.startswith("1 of the film's 3 subtitle lines start after its end (10.0")
    write_srt(tmp_path / "film.srt", [(1.0, 3.0, "First line here."), (9.5, 10.5, "Over the end.")])
    assert not decode(film, segment="window", image_size=32)[1]


def test_a_damaged_avi_keeps_its_clock(tmp_path):
    # AVI stores no timestamps: its demuxer counts chunks, and after damaged data it skips, every later packet was
    # counted early by what was lost (before 2026-12-05: this film's picture and sound 1.1 s early from the damage
    # on, out of step with its subtitles, its end at 18.96 s, and no row). The file's index puts them back.
    t = np.arange(20 * 44100) / 44100
    beeps = np.where((t % 1.0) < 0.02, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    source = encode_film(tmp_path / "divx.avi", paint=lambda i, _: np.full((120, 160, 3), (i * 7) % 255, np.uint8),
                         frame_times=[i / 25 for i in range(500)], fps=25, size=(160, 120), audio=beeps,
                         sample_rate=44100, audio_codec="libmp3lame")
    whole, _, _ = decode(source, segment="window", window_s=2.0, image_size=32)
    clips, errors, stats = decode(make_damaged(tmp_path / "damaged.avi", source), decode_threads=1, segment="window",
                                  window_s=2.0, image_size=32)
    assert stats["media_end_s"] == pytest.approx(20.0, abs=0.1) and len(clips) == len(whole) == 10
    for a, b in zip(whole[6:], clips[6:]):  # after the damage (at about 10-11 s): the same pictures and sound
        assert np.array_equal(a.frame_times, b.frame_times)
        assert all(np.abs(x.astype(int) - y).max() < 3 for x, y in zip(a.frames, b.frames))
        assert np.corrcoef(a.audio, b.audio)[0, 1] > 0.99
    assert [e.error_type for e in errors] == ["AudioGap"]


def test_a_packet_on_a_pid_no_table_lists_is_skipped(tmp_path):
    """A DVB capture with a bit error in a TS packet's PID: FFmpeg adds a stream for the PES it starts, which PyAV's
    demux has no Stream for (IndexError; PyAV issue 692). The packet is skipped and the film read to its end; before
    2026-12-06 it failed with 'decode: IndexError: list index out of range'."""
    data = bytearray(make_film(tmp_path / "capture.ts", duration_s=8.0, size=(160, 96)).read_bytes())
    starts = [k for k in range(0, len(data), 188) if data[k] == 0x47 and data[k + 1] & 0x40
              and ((data[k + 1] & 0x1F) << 8 | data[k + 2]) == 0x100]  # where a picture's PES starts
    k = starts[len(starts) // 2]
    data[k + 1], data[k + 2] = (data[k + 1] & 0xE0) | 0x1F, 0xF0  # its PID 0x100 -> 0x1FF0
    (tmp_path / "flipped.ts").write_bytes(bytes(data))
    clips, errors, stats = decode(tmp_path / "flipped.ts", segment="window", window_s=4.0, image_size=32)
    assert stats["media_end_s"] == pytest.approx(8.0, abs=0.2) and [c.spec.start_s for c in clips] == [0.0, 4.0]
    assert all(not e.fatal for e in errors)


def test_a_damaged_avi_index_is_not_trusted(tmp_path):
    """The index puts a packet back where the demuxer lost count, never earlier than its count (an entry lost from
    the index moves every later entry one chunk early) and never far past the stream's end (a damaged entry's size
    put the sound of an 8 s film at 49 hours: 11 GB of silence and clips, before 2026-12-06)."""
    import struct
    from types import SimpleNamespace

    import av

    from transforms.avi_index import AviIndex
    data = bytearray(make_film(tmp_path / "divx.avi", duration_s=8.0, size=(160, 96)).read_bytes())
    idx1 = data.rfind(b"idx1")
    entries = [idx1 + 8 + 16 * k for k in range(struct.unpack("<I", data[idx1 + 4:idx1 + 8])[0] // 16)]
    video = [e for e in entries if data[e + 2:e + 4] == b"dc"]
    data[video[len(video) // 2]:video[len(video) // 2] + 4] = b"zzzz"  # one picture's entry lost
    (tmp_path / "lost_entry.avi").write_bytes(bytes(data))
    with av.open(str(tmp_path / "lost_entry.avi")) as container:
        index, moved = AviIndex.of(container, list(container.streams)), 0
        for packet in container.demux():
            before = packet.pts
            index.place(packet)
            moved += packet.pts != before
    assert moved == 0
    stream = SimpleNamespace(index=1)
    far = AviIndex({1: (np.array([100, 200]), np.array([3, 2_800_000]))}, {1: 126 + 60 * 16})  # (8 s at 1/16 s)
    for pos, pts, placed in ((108, 2, 3), (208, 4, 4)):  # a count the damage made early is mended; a wild one is not
        packet = SimpleNamespace(stream=stream, pos=pos, pts=pts, dts=pts)
        far.place(packet)
        assert packet.pts == placed


def test_frames_behind_the_first_after_a_damaged_stretch_do_not_run_the_film_on():
    """What a damaged Sintel trailer's H.264 decoder gave (a zeroed block at 29 s): frames to 29.125 s, none for the
    damaged stretch, then one at 30.5 s, then the frames from 29.208 s on, each 1/24 s after the one before. Each of
    those behind ones is placed where the picture had got to; before 2026-12-06 each also moved that point on by the
    step before it (1 s, the gap's), so each next one was behind again: the 52 s film ran to 207 s and its sound was
    lost from 40 s. Fed as decode_film feeds it (a frame's duration: the film time since the frame before)."""
    from transforms.decode import Timeline
    line, film, last = Timeline(restarts=False, horizon=52.2 + 60.0), [], 1 / 24
    own = [i / 24 for i in range(700)] + [30.5] + [29.208 + i / 24 for i in range(550)]
    for t in own:
        placed = line.time(t, last)
        if film and placed > film[-1]:
            last = placed - film[-1]
        film.append(max(placed, film[-1]) if film else placed)
    assert film[-1] < 53.0 and not line.resets


def test_a_timestamp_far_past_the_end_is_damage_not_a_gap():
    """A packet whose time leaps past the film's declared end (the horizon) and far ahead of the stream and of the
    other stream is placed where its stream had got to, and counted (leaps), not taken as a restart; a gap within the
    film (a paused recording) is still real time."""
    from transforms.decode import Timeline
    line = Timeline(horizon=8.0 + 60.0)
    times = [line.time(t, 0.1, other=min(t, 0.4)) for t in (0.0, 0.1, 0.2, 176916.0, 176916.1, 0.5, 0.6)]
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) and not line.resets
    assert [round(t) for _, t in line.leaps] == [176916, 176916]
    paused = Timeline(horizon=200.0 + 60.0)
    assert [paused.time(t, 1.0, other=o) for t, o in ((0.0, 0.0), (1.0, 1.0), (150.0, 1.5))] == [0.0, 1.0, 150.0]


@pytest.mark.parametrize("name,video,audio,rate", [
    ("web.webm", "libvpx-vp9", "libopus", 48000), ("old_web.flv", "flv", "libmp3lame", 44100),
    ("phone.3gp", "h263", "aac", 16000), ("bluray.m2ts", "h264", "ac3", 48000),
    ("master.mxf", "mpeg2video", "pcm_s16le", 48000), ("lossless.nut", "ffv1", "flac", 48000),
    ("vcd.mpg", "mpeg1video", "mp2", 44100)])
def test_containers_and_codecs_of_an_archive_decode_whole_and_quietly(tmp_path, name, video, audio, rate):
    # Each a 10 s film. The NUT file's last, empty audio packet, which the FLAC decoder refuses, was reported as a
    # damaged stretch before 2026-12-05 ("audio undecodable from 10.00s to the end"): no data is lost there.
    size = (176, 144) if name.endswith(".3gp") else (160, 120)
    film = encode_film(tmp_path / name, paint=lambda i, t: np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / 25 for i in range(250)], fps=25, size=size, video_codec=video,
                       audio=speech_like(10.0, rate), sample_rate=rate, audio_codec=audio)
    clips, errors, stats = decode(film, segment="window", window_s=2.0, image_size=32)
    assert not errors and stats["media_end_s"] == pytest.approx(10.0, abs=0.06)
    assert [len(c.frames) for c in clips] == [2] * 5
    assert all(abs(c.audio.size - (c.spec.end_s - c.spec.start_s) * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE for c in clips)


def test_a_multiplex_capture_is_heard_in_its_pictures_programme(tmp_path):
    # A whole DVB multiplex recorded: a television programme (picture and speech) beside a radio service (a
    # 440 Hz tone), whose tables come first, so FFmpeg lists the radio's sound as the first audio track. Before
    # 2026-12-05 that track was taken as the film's sound: every clip heard the radio.
    from testing.films import make_multiplex
    from transforms.ts_programs import packet_size, programmes_of, read_head
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    film = make_multiplex(tmp_path / "multiplex.ts", [
        dict(paint=lambda i, _: np.full((64, 96, 3), (i * 7) % 255, np.uint8), frame_times=[i / 10 for i in range(60)],
             fps=10, video_codec="mpeg2video", audio=speech_like(6.0), audio_codec="mp2"),
        dict(audio=(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), audio_codec="mp2")])
    assert programmes_of(read_head(str(film))) == {1: {0x100, 0x101}, 2: {0x200}}
    info = probe_film(str(film))
    assert info.audio_stream == 2  # the television programme's track; the radio's is stream 0
    clips, errors, _ = decode(film, segment="window", window_s=2.0, image_size=32)
    assert not errors and len(clips) == 3
    for c in clips:
        spectrum = np.abs(np.fft.rfft(c.audio))
        at_440 = spectrum[int(440 * c.audio.size / SAMPLE_RATE)]
        assert at_440 < 0.05 * spectrum.max()  # the radio's tone is not in it
    # One programme (a Blu-ray M2TS: 192-byte packets) keeps the usual choice; so does any other container
    m2ts = encode_film(tmp_path / "one.m2ts", paint=lambda i, _: np.zeros((64, 96, 3), np.uint8),
                       frame_times=[i / 10 for i in range(20)], fps=10, audio=speech_like(2.0, 48000), sample_rate=48000,
                       audio_codec="ac3")
    assert packet_size(read_head(str(m2ts))) == 192 and len(programmes_of(read_head(str(m2ts)))) == 1
    assert probe_film(str(m2ts)).audio_stream is None


def test_sound_stored_after_the_picture_is_waited_for_not_taken_as_ended(tmp_path):
    # A Matroska file written picture first and its sound after (a naive muxer; the interleaving delta set to
    # nothing): the sound is not over when the picture runs 10 s ahead, it is later in the file. Its clips wait for
    # it (the sound has not reached its declared end), so every one has its audio.
    import av

    from testing.films import _audio_frame
    path = tmp_path / "picture_then_sound.mkv"
    with av.open(str(path), "w", options={"max_interleave_delta": "1"}) as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        a = out.add_stream("aac", rate=SAMPLE_RATE)
        a.layout = "mono"
        for i in range(400):
            frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), i % 255, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        wave = speech_like(40.0)
        for k in range(0, wave.size, 1024):
            out.mux(a.encode(_audio_frame(wave[k:k + 1024], a.codec_context.format.name, SAMPLE_RATE, k)))
        out.mux(a.encode(None))
    with av.open(str(path)) as c:
        order = [p.stream.type for p in c.demux() if p.size]
    assert order.index("audio") >= 390  # the sound starts after the picture in the file
    clips, errors, _ = decode(path, segment="window", window_s=4.0, image_size=32)
    assert not errors and len(clips) == 10
    assert all(abs(c.audio.size - 4 * SAMPLE_RATE) <= 0.02 * SAMPLE_RATE for c in clips)


class _ScriptedSpeech:
    """A CueSource that 'hears' fixed utterances once the audio has reached their end: decode_film then plans clips
    late, from a fine grid of frames (the ASR path's planning), without running a recogniser."""

    def __init__(self, cues):
        self.cues, self.covered_until_s = list(cues), 0.0

    def feed(self, samples, t0):
        self.covered_until_s = max(self.covered_until_s, t0 + samples.size / 16000)
        done = [c for c in self.cues if c.end_s <= self.covered_until_s]
        self.cues = [c for c in self.cues if c not in done]
        return done

    def finish(self):
        done, self.cues = self.cues, []
        return done


@pytest.mark.parametrize("kind", ["cfr", "vfr", "short_picture"])
def test_an_intra_only_picture_decodes_only_the_frames_beside_sample_times(tmp_path, kind):
    """ProRes, DNxHD, MJPEG and JPEG 2000 (IMF, DCP) masters: every frame decodes on its own, and the pass decodes
    only the two around each sample time (a 1080p JPEG 2000 frame takes about 0.4 s here, so a master decoded
    frame by frame ran at 0.1x real time). The clips are those of a pass that decodes every frame, bit for bit:
    windows, dense samples, a plan made late from speech, a picture that ends before its sound, variable frame
    times."""
    from testing.films import _scene_frame, encode_film, speech_like
    from transforms.elements import Cue

    def paint(i, t):
        frame = _scene_frame(t, (160, 96), (4.0, 8.0)).copy()
        frame[:8] = (i * 37) % 256  # every frame differs: a wrong frame shows
        return frame
    rng = np.random.default_rng(0)
    times = {"cfr": [i / 24 for i in range(288)], "short_picture": [i / 24 for i in range(100)],
             "vfr": [float(t) for t in np.cumsum(rng.uniform(0.02, 0.3, 200)) if t < 12]}[kind]
    film = encode_film(tmp_path / f"master_{kind}.mkv", paint=paint, frame_times=times, fps=24, size=(160, 96),
                       video_codec="prores_ks", vfr=kind == "vfr", audio=speech_like(12.0))
    speech = [Cue(1.2, 3.1, "", "asr"), Cue(6.0, 9.5, "", "asr")]
    for cfg, asr in ((dict(segment="window", window_s=2.0), False), (dict(segment="window", window_s=1.0,
                     frame_every_s=0.3), False), (dict(segment="subtitle"), True)):
        got = {}
        for skip in (True, False):
            stats = {}
            cues = _ScriptedSpeech(speech) if asr else None
            clips = [c for c in decode_film(job_for(film), DecodeConfig(skip_nonref=skip, **cfg), cue_source=cues,
                                            stats=stats) if isinstance(c, DecodedClip)]
            got[skip] = ([(c.spec.start_s, c.spec.end_s, list(c.frame_times), c.frames.tobytes(), c.audio.tobytes())
                          for c in clips], stats)
        assert got[True][0] == got[False][0], cfg
        assert got[True][1]["media_end_s"] == got[False][1]["media_end_s"]
        assert got[False][1]["skipped_frames"] == 0
        if cfg.get("window_s") == 2.0 and kind != "short_picture":  # a frame a second is needed of 4 to 24
            assert got[True][1]["skipped_frames"] > 0.4 * len(times), got[True][1]


def test_a_clock_that_cannot_restart_holds_a_run_of_earlier_times():
    """In an mp4, Matroska or MXF the times come from an index that only goes forward: a run of frames with earlier
    times (a decoder's output after damaged data) is held where the stream had got to, not read as a restart that
    moves the rest of the film later (a damaged mp4 came out 23 s long instead of 20 in some test runs). In an
    MPEG-TS capture the same run is a restart, as before."""
    from transforms.decode import Timeline
    times = [i * 0.04 for i in range(125)] + [2.0 + i * 0.04 for i in range(10)] + [5.0 + i * 0.04 for i in range(50)]
    for restarts in (False, True):
        line = Timeline(math.inf, restarts=restarts)
        out = [line.time(t, 0.04) for t in times]
        if restarts:
            assert line.resets and max(out) > 7.5  # the run read as a restart: the rest moved 3 s later
        else:
            assert not line.resets and max(out) < 7.0  # (the run is placed frame by frame where it had got to)


def test_an_mp4_whose_index_points_past_its_end_is_read_on_past_that_sample(tmp_path):
    """One chunk offset of an MP4's sample table damaged to point past the file's end (a flipped high bit): FFmpeg's
    demuxer stopped there, the rest of the film lost (MediaEndedEarly). It moves past a sample before it reads it, so
    the read goes on with the next one: the film comes out whole, a ReadResumed row says where, and the clips
    there are marked damaged (probe.demux)."""
    import struct
    source = encode_film(tmp_path / "whole.mp4", paint=lambda i, t: np.full((64, 96, 3), (i * 7) % 255, np.uint8),
                         frame_times=[i / 25 for i in range(250)], fps=25, size=(96, 64), video_codec="h264",
                         gop_size=25, audio=speech_like(10.0))
    data = bytearray(source.read_bytes())
    at = data.find(b"stco")
    n = struct.unpack(">I", data[at + 8:at + 12])[0]
    entry = at + 12 + 4 * (n // 2)  # a chunk halfway through the first track's table
    data[entry:entry + 4] = struct.pack(">I", struct.unpack(">I", data[entry:entry + 4])[0] | 0x40000000)
    damaged = tmp_path / "index.mp4"
    damaged.write_bytes(bytes(data))
    clips, errors, stats = decode(damaged, segment="window", window_s=2.0, image_size=32)
    assert stats["media_end_s"] == pytest.approx(10.0, abs=0.2) and len(clips) == 5
    kinds = [e.error_type for e in errors]
    assert "ReadResumed" in kinds and "MediaEndedEarly" not in kinds and not any(e.fatal for e in errors)
    row = next(e.message for e in errors if e.error_type == "ReadResumed")
    stopped = float(row.split("first at ")[1].split("s ")[0])
    assert 2.0 < stopped < 8.0 and any(c.damaged for c in clips if c.spec.start_s <= stopped < c.spec.end_s)
    assert all(c.audio.size for c in clips) and all(len(c.frames) for c in clips)
    whole, errors, _ = decode(source, segment="window", window_s=2.0, image_size=32)
    assert not errors and not any(c.damaged for c in whole)


def test_damaged_stretches_past_the_first_rows_are_counted_in_one_more(tmp_path):
    """Eight sound packets damaged apart from each other: the first five stretches are a row each, the other three
    one MoreDamage row that counts them (before 2026-12-06 they were dropped without a word), and every clip with one
    is marked."""
    import av
    source = encode_film(tmp_path / "whole.mp4", paint=lambda i, t: np.full((64, 96, 3), (i * 7) % 255, np.uint8),
                         frame_times=[i / 25 for i in range(400)], fps=25, size=(96, 64), video_codec="h264",
                         audio=speech_like(16.0))
    with av.open(str(source)) as c:
        sound = [(p.pos, p.size, float(p.pts * p.time_base)) for p in c.demux(c.streams.audio[0]) if p.size]
    data = bytearray(source.read_bytes())
    hit = [next(p for p in sound if p[2] >= 1.0 + 1.7 * k) for k in range(8)]
    for pos, size, _ in hit:
        data[pos:pos + size] = b"\xff" * size
    damaged = tmp_path / "eight.mp4"
    damaged.write_bytes(bytes(data))
    clips, errors, _ = decode(damaged, decode_threads=1, segment="window", window_s=2.0, image_size=32)
    kinds = [e.error_type for e in errors]
    assert kinds.count("AudioPacketError") == 5 and kinds.count("MoreDamage") == 1, kinds
    assert next(e.message for e in errors if e.error_type == "MoreDamage").startswith("3 more damaged stretch(es)")
    marked = {int(c.spec.start_s // 2) for c in clips if "audio" in c.damaged}
    assert marked >= {int(t // 2) for _, _, t in hit}


def test_a_shot_clip_decoded_alone_takes_the_grid_frames_the_pass_took():
    """A shot clip (planned as the film plays) takes its frames from the pass's grid; decoded alone it took its own
    sample times before 2026-12-07, up to 0.17 s away and across cuts: pipeline.report --explain showed frames the
    run never scored (8 of 16 Sintel shot clips; one label flipped). Now the same frames, bit for bit."""
    from transforms.decode import decode_clip
    from tests.scoring_support import SINTEL
    film = str(SINTEL)
    if not SINTEL.is_file():
        pytest.skip("the Sintel trailer is not in ../shared")
    cfg = DecodeConfig(segment="shot", image_size=32, face_width=0)
    whole = [c for c in decode_film(job_for(Path(film)), cfg) if isinstance(c, DecodedClip)]
    assert len(whole) > 8 and {c.spec.segment_source for c in whole} == {"shot"}
    moved = 0
    for target in whole[3:6]:
        alone = decode_clip(film, target.spec.start_s, target.spec.end_s, cfg, on_grid=True)
        assert np.array_equal(alone.frame_times, target.frame_times), target.spec
        assert np.array_equal(alone.frames, target.frames)
        own = decode_clip(film, target.spec.start_s, target.spec.end_s, cfg)  # a window's own sample times
        moved += not np.array_equal(own.frame_times, target.frame_times)
    assert moved  # the check means something: the clips' own times are not the grid's


def test_every_clip_of_a_film_planned_from_speech_decoded_alone_takes_the_grid_frames():
    """Speech recognition plans a film's clips as it plays: the windows between utterances take their frames from
    the grid as the utterances do (transforms.decode.planned_late tells such a film by an `asr` clip), and decoded
    alone (report --explain) they take the same frames."""
    import tempfile

    from transforms.decode import decode_clip, planned_late
    from transforms.elements import Cue
    with tempfile.TemporaryDirectory() as tmp:
        film = make_film(Path(tmp) / "f.mp4", duration_s=12.0, fps=24)
        cfg = DecodeConfig(segment="subtitle", image_size=32, face_width=0)
        speech = [Cue(1.2, 3.1, "hello there", "asr", language="en"), Cue(8.0, 9.5, "see you", "asr", language="en")]
        whole = [c for c in decode_film(job_for(film), cfg, cue_source=_ScriptedSpeech(speech))
                 if isinstance(c, DecodedClip)]
        sources = [c.spec.segment_source for c in whole]
        assert "asr" in sources and "window" in sources and planned_late("subtitle", sources)
        assert not planned_late("subtitle", ["subtitle", "window"]) and planned_late("shot", [])
        for clip in whole:
            alone = decode_clip(str(film), clip.spec.start_s, clip.spec.end_s, cfg, on_grid=True)
            assert np.array_equal(alone.frame_times, clip.frame_times), clip.spec
            assert np.array_equal(alone.frames, clip.frames)


@pytest.mark.parametrize("ext", ["mp4", "ts"])
def test_a_clip_before_the_sound_starts_has_silence_there_not_the_sound_moved(tmp_path, ext):
    """Found in review (2026-12-07): a film whose sound starts a second after its picture gave the clip [0.5, 1.5)
    half a second of sound, placed at the clip's start, and [1, 2) 0.976 s: every sample 0.5-1 s early in its
    clip. Now silence up to the sound's first sample, and every clip that reaches the sound as long as it."""
    from testing.films import speech_like
    film = encode_film(tmp_path / f"late.{ext}", paint=lambda i, t: np.full((64, 64, 3), i % 255, np.uint8),
                       frame_times=[i / 25 for i in range(150)], fps=25, size=(64, 64), video_codec="libx264",
                       audio=speech_like(6.0), audio_hole=(0.0, 1.0))
    clips, _, _ = decode(film, segment="window", window_s=1.0, hop_s=0.5, image_size=32)
    first_sound = next(c.spec.start_s for c in clips if np.abs(c.audio).max() > 0)
    for c in clips:
        if c.spec.end_s > first_sound + 0.5:  # (clips wholly before the sound have none, as before)
            assert abs(c.audio.size / SAMPLE_RATE - (c.spec.end_s - c.spec.start_s)) < 0.01, c.spec
    lead = next(c for c in clips if c.spec.start_s == 0.5)
    assert not np.abs(lead.audio[:int(0.4 * SAMPLE_RATE)]).any() and np.abs(lead.audio[-int(0.4 * SAMPLE_RATE):]).any()


def test_a_cut_just_before_the_films_end_makes_no_sliver_shot(tmp_path):
    """Found in review (2026-12-07): the streaming shot planner took a hard cut 0.4 s before a 6 s film's end, so
    its last clip was [5.6, 6.04), shorter than --min_clip_s; plan_shots ignores such a cut, and so does it now."""
    from transforms.segment import plan_shots
    film = make_film(tmp_path / "lastcut.mp4", duration_s=6.0, fps=25, cuts=[5.6], video_codec="libx264",
                     size=(160, 96))
    clips, _, _ = decode(film, segment="shot", image_size=32)
    assert len(clips) == len(plan_shots([5.6], 6.0)) == 1 and clips[0].spec.end_s > 5.9


def test_sound_goes_on_after_a_damaged_stretch_leaves_the_aac_decoder_in_nonsense(tmp_path):
    """Found in review (2026-12-07): 5 % random bytes in the middle of a film of speech left FFmpeg's AAC decoder
    giving 28-channel frames for the rest of the film; the resampler refused them and the film's sound, and its
    speech recognition, ended there (one non-fatal row). A fresh decoder takes over at the first such frame."""
    from testing.films import make_damaged, make_soundtrack_film
    from testing.speech import JFK, MEDIA, decode_audio
    libri = MEDIA / "speech" / "librivox"
    wave = np.concatenate([decode_audio(libri / f"{i}.wav") for i in (libri / "fileids").read_text().split()]
                          + [decode_audio(JFK)] * 2)
    source = make_soundtrack_film(tmp_path / "speech.mp4", wave, sample_rate=SAMPLE_RATE)
    film = make_damaged(tmp_path / "damaged.mp4", source, at=0.5, share=0.05)
    clips, errors, _ = decode(film, segment="window", window_s=4.0, image_size=32)
    assert not [e for e in errors if e.error_type == "AudioDecodeError"]  # (was: "audio resampling failed")
    damaged_until = max(c.spec.end_s for c in clips if "audio" in c.damaged)
    after = [c for c in clips if c.spec.start_s >= damaged_until]
    assert after and all(c.audio.size and np.abs(c.audio).max() > 0.05 for c in after)


def test_of_two_video_streams_the_films_picture_is_read_not_a_preview_stored_first(tmp_path):
    """A camera's or an editor's file with a preview stored first: a 320x240 picture of one frame (larger than the
    film), then the film (160x96, 4 s): the film's stream is read and a note says which. Before 2026-12-07 the first
    stream was the whole film's picture."""
    import av
    path = tmp_path / "preview_first.mp4"
    with av.open(str(path), "w") as out:
        streams = [(out.add_stream("libx264", rate=25), 320, 240, 1, (128, 128, 128)),
                   (out.add_stream("libx264", rate=25), 160, 96, 100, (220, 30, 30))]
        for v, w, h, n, colour in streams:
            v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        for v, w, h, n, colour in streams:
            mux_frames(out, v, [np.full((h, w, 3), colour, np.uint8)] * n)
    info = probe_film(str(path))
    assert (info.width, info.height) == (160, 96) and info.duration_s == pytest.approx(4.0, abs=0.1)
    clips, errors, _ = decode(path, segment="window", window_s=2.0, image_size=32)
    assert [(e.error_type, e.fatal) for e in errors] == [("OtherVideoStreams", False)]
    assert "stream(s) 0 passed over: stream 1 (160x96" in errors[0].message
    assert len(clips) == 2 and all(c.frames[..., 0].mean() > 180 and c.frames[..., 2].mean() < 80 for c in clips)


def test_a_film_with_b_frames_ends_where_its_last_frame_does_with_skip_nonref_too(tmp_path):
    """skip_nonref leaves B-frames out, so the gap between the last two decoded frames spans the ones shown between
    them: taken as the last frame's time, an 8 s H.264 film ended at 8.04 s (before 2026-12-07)."""
    path = make_film(tmp_path / "b_frames.mp4", duration_s=8.0, fps=25, video_codec="libx264")
    ends = {skip: decode(path, segment="window", window_s=4.0, image_size=32, skip_nonref=skip)[2]["media_end_s"]
            for skip in (True, False)}
    assert ends[True] == pytest.approx(8.0, abs=1e-3) and ends[False] == pytest.approx(8.0, abs=1e-3)


ENGLISH_LINES = ["Where have you been all night? I was worried sick about you.",
                 "I told you, I was at the office working late.",
                 "You never call, you never write, you never tell me anything."]
SPANISH = "¡Te odio! ¡Maldito traidor, vete de aquí!"


@pytest.mark.parametrize("segment", ["subtitle", "window"])
def test_a_clip_with_a_line_the_text_path_does_not_read_is_not_read_nor_anyones_context(tmp_path, segment):
    """Found in review (2026-12-07): since a line of another language among a film's is not read
    (transforms.language.line_unlike), a clip made of it and an English line took its first line's language (the
    Spanish line read by the English text model inside an English clip, or an English clip not read), and the line
    not read was the next clip's context, read there. Now a clip with a line not read is not read, and such a line is
    no context (the report's --explain takes the same rule from the clips table)."""
    from transforms.elements import Cue
    from transforms.language import UNIDENTIFIED, label_cues
    film = make_film(tmp_path / "f.mkv", duration_s=16.0, fps=5)
    lines = [(0.5, 2.5, ENGLISH_LINES[0]), (4.0, 4.8, "What did he say?"), (4.9, 6.0, SPANISH),
             (8.5, 10.5, SPANISH), (12.5, 14.5, ENGLISH_LINES[1])]
    cues = label_cues([Cue(a, b, t, source="subtitle") for a, b, t in lines], ("en",))
    assert [c.language for c in cues] == ["en", "en", UNIDENTIFIED, UNIDENTIFIED, "en"]
    ref = FilmRef(str(film), film.stat().st_size, film_id_for(str(film)), "fp")
    job = FilmJob(ref, probe_film(str(film)), tuple(cues), needs_asr=False, config_hash="test")
    cfg = DecodeConfig(segment=segment, window_s=4.0, image_size=32, face_width=0, text_languages=("en",))
    said = [c.spec for c in decode_film(job, cfg) if isinstance(c, DecodedClip) and c.spec.text]
    mixed = next(s for s in said if "What did he say?" in s.text)
    assert SPANISH in mixed.text and mixed.language == UNIDENTIFIED  # (subtitles: merged; windows: one window)
    last = said[-1]
    assert last.text == ENGLISH_LINES[1] and last.language == "en"
    assert last.context and not any("Maldito" in line for line in last.context)
    read_any = DecodeConfig(segment=segment, window_s=4.0, image_size=32, face_width=0)  # () = any: all read
    said_any = [c.spec for c in decode_film(job, read_any) if isinstance(c, DecodedClip) and c.spec.text]
    assert any("Maldito" in line for line in said_any[-1].context)
