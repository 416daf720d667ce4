"""When each sampled frame and each stretch of sound is from: held stills, frames without a time, a picture that
starts late or ends early, seeks in a long GOP, repeated sound, a container's start offset.

Every test film's frames show their own time (centiseconds as a 4x4 grid of black and white blocks: `_paint`,
read back by `_shown`), so a clip's frame says which of the film's frames it is."""
import av
import numpy as np
import pytest

from testing.films import encode_film, speech_like
from tests.test_decode import decode, job_for
from transforms.decode import SAMPLE_RATE, DecodeConfig, decode_clip, decode_film
from transforms.elements import Cue, DecodedClip
from transforms.probe import probe_film

SIDE = 64  # frames and clips at 64 x 64: blocks of 16 pixels
FPS = 25


def _paint(i: int, t: float) -> np.ndarray:
    cs, img = int(round(t * 100)), np.zeros((SIDE, SIDE, 3), np.uint8)
    for b in range(16):
        if cs >> b & 1:
            r, c = divmod(b, 4)
            img[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = 255
    return img


def _shown(img: np.ndarray) -> float:
    """The film time a frame painted by _paint shows (s)."""
    grey, cs = img.astype(np.float32).mean(-1), 0
    q = img.shape[0] // 4
    for b in range(16):
        r, c = divmod(b, 4)
        if grey[r * q + q // 4:r * q + 3 * q // 4, c * q + q // 4:c * q + 3 * q // 4].mean() > 128:
            cs |= 1 << b
    return cs / 100


def _frames(clip) -> list[tuple[float, float]]:
    """(the time the clip gives each frame, the time the frame shows)."""
    return [(round(float(t), 2), _shown(f)) for f, t in zip(clip.frames, clip.frame_times)]


def _film(path, times, audio_s=None, **kw):
    return encode_film(path, paint=_paint, frame_times=times, fps=FPS, size=(SIDE, SIDE), video_codec="libx264",
                       audio=None if audio_s is None else speech_like(audio_s), **kw)


def _cfr(seconds: float, start: float = 0.0) -> list[float]:
    return [round(start + i / FPS, 3) for i in range(int(round(seconds * FPS)))]


def _picture_at(film) -> float:
    """The film time of the picture's time 0 (a sound that starts before it, by its encoder's priming, puts it
    later; 0 where the frames have no time)."""
    with av.open(str(film)) as c:
        first = next(c.decode(video=0))
        start = (c.start_time or 0) / 1e6
        return 0.0 if first.time is None else first.time - start - _shown(first.to_ndarray(format="rgb24"))


def _in_place(clips, at: float = 0.0) -> None:
    """Each frame is the one the clip says (the picture's time 0 at film time `at`), none from after the clip."""
    for c in clips:
        for claimed, shown in _frames(c):
            assert claimed == pytest.approx(shown + at, abs=0.011) and shown + at < c.spec.end_s


# -- 1. a still held on screen --------------------------------------------------------------------------------------

@pytest.mark.parametrize("skip_nonref", [True, False])
@pytest.mark.parametrize("segment", ["window", "shot"])
def test_a_held_still_is_the_frame_on_screen_not_the_next_shots(tmp_path, segment, skip_nonref):
    # A VFR encode: 25 fps to 1 s, the frame at 1.0 s held to 4.0 s, 25 fps again to 6 s. A sample time in the
    # hold's second half took the frame after it (the nearest), from the next clip: clip [2, 4) showed 4.0 twice.
    film = _film(tmp_path / "held.mkv", _cfr(1.0) + [1.0] + _cfr(2.0, 4.0), audio_s=6.0, vfr=True)
    clips, errors, _ = decode(film, segment=segment, window_s=2.0, max_clip_s=2.0, image_size=SIDE, face_width=0,
                              skip_nonref=skip_nonref)
    assert not errors and clips[-1].spec.end_s == pytest.approx(6.0, abs=0.05)
    _in_place(clips)
    held = [c for c in clips if c.spec.end_s <= 4.0 + 1e-6 and c.spec.start_s >= 1.1]
    assert held and all(len(c.frames) for c in held)
    # the still, also where it is a frame no other refers to (skip_nonref: before, the one before it, 40 ms earlier)
    assert all(shown == 1.0 for c in held for _, shown in _frames(c))


def test_a_sample_time_takes_the_next_frame_only_within_a_frame_of_it():
    # FramePicker alone: frames at 0, 0.04 (a constant rate: the nearest, as before) and a still at 0.08 held to
    # 3.0 s: 2.5 and 2.9 take the still, 2.97 (within a frame of 3.0) the frame at 3.0.
    from transforms.decode import FramePicker
    picker = FramePicker(8, nominal_s=0.04)
    picker._rgb = lambda frame: (np.zeros((8, 8, 3), np.uint8), None)
    picker.request("c", [0.015, 0.025, 2.5, 2.9, 2.97])
    for t in (0.0, 0.04, 0.08, 3.0):
        picker.on_frame(None, t)
    assert list(picker.take("c")[1]) == [0.0, 0.04, 0.08, 0.08, 3.0]


def test_a_held_frame_is_known_by_its_packets_times():
    # Frames every 20 ms to 100 ms, held to 3000 ms, then every 20 ms; in decode order (ms) each B-frame comes after
    # the later frame it refers to. The still (B 100) is found, and the B-frame before it too (one frame more).
    from transforms.decode import HeldStills
    stills = HeldStills(held_ticks=8 * 20)
    order = [0, 60, 20, 40, 3000, 80, 100, 3060, 3020, 3040]
    assert [t for t in order if stills.held(t)] == [80, 100]


# -- 2. frames without a time ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["nopts.mpg", "raw.h264"])
def test_frames_without_a_timestamp_follow_the_one_before_at_the_frame_rate(tmp_path, name):
    # H.264 in an MPEG program stream (a PTS on few PES packets: 98 of these 100 frames have none) and a raw H.264
    # stream (none at all). Before, a frame without a time was put the last gap after the one before, that gap
    # learnt from those times: the 4 s PS ran to 20 s; the raw stream's frames were all at -inf and it failed.
    sound = dict(audio_s=4.0, audio_codec="mp2") if name.endswith(".mpg") else {}
    film = _film(tmp_path / name, _cfr(4.0), gop_size=250, **sound)
    with av.open(str(film)) as c:
        assert sum(f.pts is None for f in c.decode(video=0)) >= 98
    clips, errors, stats = decode(film, segment="window", window_s=2.0, image_size=SIDE, face_width=0)
    assert stats["media_end_s"] == pytest.approx(4.0, abs=0.1)
    assert [(c.spec.start_s, round(c.spec.end_s)) for c in clips] == [(0.0, 2), (2.0, 4)]
    _in_place(clips, _picture_at(film))
    assert all(len(c.frames) == 2 for c in clips)
    assert [e.error_type for e in errors] == ["MissingTimestamps"]


# -- 3. clips planned in the pass after the picture's end -------------------------------------------------------------

class _Heard:
    """A stand-in for the speech recogniser: it 'hears' the given lines once the sound has reached their end."""

    def __init__(self, lines):
        self.lines, self.covered_until_s, self.given = lines, 0.0, 0

    def feed(self, audio, t0_s):
        self.covered_until_s = max(self.covered_until_s, t0_s + len(audio) / SAMPLE_RATE - 2.0)
        out = [c for c in self.lines[self.given:] if c.end_s <= self.covered_until_s]
        self.given += len(out)
        return out

    def finish(self):
        self.covered_until_s = max([self.covered_until_s] + [c.end_s for c in self.lines])
        return self.lines[self.given:]


@pytest.mark.parametrize("segment", ["shot", "asr"])
def test_clips_found_in_the_pass_after_the_pictures_end_hold_its_last_frame(tmp_path, segment):
    # 4 s of picture, 8 s of sound: window and subtitle plans hold the last frame there; shot clips and clips of
    # recognised speech had none.
    film = _film(tmp_path / "short_picture.mp4", _cfr(4.0), audio_s=8.0)
    cfg = DecodeConfig(segment="shot" if segment == "shot" else "subtitle", max_clip_s=2.0, image_size=SIDE,
                       face_width=0)
    heard = _Heard([Cue(1.0, 2.5, "a line", source="asr"), Cue(5.0, 7.0, "a line after the picture", source="asr")])
    out = list(decode_film(job_for(film), cfg, cue_source=heard if segment == "asr" else None))
    clips = [c for c in out if isinstance(c, DecodedClip)]
    after = [c for c in clips if c.spec.start_s >= 4.0]
    assert after and clips[-1].spec.end_s == pytest.approx(8.0, abs=0.1)
    assert all(len(c.frames) and all(shown == pytest.approx(3.96) for _, shown in _frames(c)) for c in after)


# -- 4. a seek in a long GOP ----------------------------------------------------------------------------------------

def test_a_clip_decoded_alone_in_a_long_gop_transport_stream_has_its_own_frames(tmp_path, monkeypatch):
    # An MPEG-TS with a key frame every 10 s: the seek a second before the clip lands after the key frame before
    # it, and the decoder's first frame was the next key frame's: clip [3, 5) showed 10.0 twice.
    import transforms.decode
    film = _film(tmp_path / "gop.ts", _cfr(12.0), audio_s=12.0, gop_size=250,
                 video_options={"sc_threshold": "0", "keyint_min": "250"})
    cfg = DecodeConfig(segment="window", window_s=2.0, image_size=SIDE, face_width=0)
    whole = [c for c in decode_film(job_for(film), cfg) if isinstance(c, DecodedClip)]
    for k in (1, 3, 5):
        target = whole[k]
        alone = decode_clip(str(film), target.spec.start_s, target.spec.end_s, cfg)
        _in_place([alone], _picture_at(film))
        assert not alone.damaged and np.array_equal(alone.frame_times, target.frame_times)
        assert np.array_equal(alone.frames, target.frames) and len(alone.frames) == 2
    # Where no key frame is found in time (one seek only here), the clip's frames before the next are missing:
    # marked, not taken from after the clip.
    monkeypatch.setattr(transforms.decode, "SEEK_TRIES", 1)
    alone = decode_clip(str(film), 6.0, 8.0, cfg)
    assert alone.damaged == ("video",) and len(alone.frames) == 0 and len(alone.audio) == 2 * SAMPLE_RATE


# -- 5. a picture that starts after the sound -----------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_before_the_picture_starts_a_clip_has_no_frame(tmp_path, suffix):
    # Sound from 0, the first frame at 2.0 s: clip [0, 2) took the 2.0 s frame for both its sample times.
    film = _film(tmp_path / f"late{suffix}", _cfr(4.0, 2.0), audio_s=6.0, vfr=True)
    clips, _, _ = decode(film, segment="window", window_s=2.0, image_size=SIDE, face_width=0)
    assert [round(c.spec.start_s) for c in clips] == [0, 2, 4] and len(clips[0].frames) == 0
    assert all(len(c.frames) == 2 for c in clips[1:])
    _in_place(clips)
    alone = decode_clip(str(film), 0.0, 1.5, DecodeConfig(image_size=SIDE, face_width=0))
    assert len(alone.frames) == 0 and len(alone.audio) == 1.5 * SAMPLE_RATE


# -- 6. a VFR film whose next-to-last frame is held -----------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_film_ends_after_its_last_frames_own_duration(tmp_path, suffix):
    # Frames to 2.0 s, the last at 5.0 s (40 ms long): the film ends at 5.04 s. The gap before the last frame was
    # taken for its duration: the film ran to 8.04 s, a DurationUnderstated row, shot clips to 8.04 s.
    film = _film(tmp_path / f"end{suffix}", _cfr(2.04) + [5.0], vfr=True)
    for segment in ("window", "shot"):
        clips, errors, stats = decode(film, segment=segment, window_s=2.0, max_clip_s=2.0, image_size=SIDE,
                                      face_width=0)
        # (this mp4's header does understate it: its muxer ends the track at the last packet's decode time, 2.08 s)
        understated = [] if suffix == ".mkv" or segment == "shot" else ["DurationUnderstated"]
        assert [e.error_type for e in errors] == understated and stats["media_end_s"] == pytest.approx(5.04, abs=0.01)
        assert all(len(c.frames) for c in clips)
        if not understated:  # (a window plan continued past the header's end leaves out a last sliver)
            assert clips[-1].spec.end_s == pytest.approx(5.04, abs=0.01)


# -- 7. sound whose timestamps overlap ------------------------------------------------------------------------------

def test_repeated_sound_packets_do_not_push_the_sound_late(tmp_path):
    # PCM in Matroska with every 20th packet (64 ms) written twice at the same time, as a capture repeats one: each
    # repeat was appended, so the sound fell 64 ms further behind the picture every 1.3 s.
    wave = np.zeros(8 * SAMPLE_RATE, np.float32)
    wave[[int((k + 0.5) * SAMPLE_RATE) for k in range(8)]] = 0.9  # a click half a second into each second
    clean = encode_film(tmp_path / "clean.mkv", paint=_paint, frame_times=_cfr(8.0), fps=FPS, size=(SIDE, SIDE),
                        video_codec="libx264", audio=wave, audio_codec="pcm_s16le")
    film = tmp_path / "repeats.mkv"
    with av.open(str(clean)) as src, av.open(str(film), "w") as out:
        vi, ai = src.streams.video[0], src.streams.audio[0]
        vo, ao = out.add_stream_from_template(vi), out.add_stream_from_template(ai)
        n = 0
        for p in src.demux(vi, ai):
            if p.dts is None:
                continue
            n += p.stream is ai
            copies = 2 if p.stream is ai and n % 20 == 0 else 1
            for _ in range(copies):
                q = av.Packet(bytes(p))
                q.pts, q.dts, q.time_base, q.duration = p.pts, p.dts, p.time_base, p.duration
                q.is_keyframe, q.stream = p.is_keyframe, (ao if p.stream is ai else vo)
                out.mux(q)
    clips, errors, _ = decode(film, segment="window", window_s=2.0, image_size=SIDE, face_width=0)
    assert len(clips) == 4
    for c in clips:  # the clicks where they are in the film, to a millisecond or two
        clicks = np.flatnonzero(np.abs(c.audio) > 0.3) / SAMPLE_RATE
        assert clicks.size == 2 and np.all(np.abs(clicks - np.round(clicks - 0.5) - 0.5) < 0.003), clicks
    assert [e.error_type for e in errors] == ["AudioOverlap"]
    assert not any(c.damaged for c in clips)


# -- 8. a container's start offset ----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mkv", ".nut", ".mp4", ".ts"])
def test_a_film_whose_clock_starts_late_lasts_its_own_length(tmp_path, suffix):
    # The same 4 s film with its timestamps starting at 5 s (a cut from a longer recording). Matroska's duration is
    # counted from 0: the film read as 9 s long, and its end at 4 s a MediaEndedEarly row.
    film = _film(tmp_path / f"offset{suffix}", _cfr(4.0), muxer_options={"output_ts_offset": "5"})
    with av.open(str(film)) as c:
        assert c.start_time / 1e6 == pytest.approx(5.0, abs=0.1)
    assert probe_film(str(film)).duration_s == pytest.approx(4.0, abs=0.12)
    clips, errors, stats = decode(film, segment="window", window_s=2.0, image_size=SIDE, face_width=0)
    assert not errors and [round(c.spec.start_s) for c in clips] == [0, 2]
    _in_place(clips)


def test_a_tail_too_short_for_a_clip_of_a_cut_short_file_is_said(tmp_path):
    """Found in review (2026-12-07): a Matroska file cut short (header 10.06 s, media to 8.4-8.7 s) dropped the
    planned window past 8 s as a sliver while the clip before it had gone out: the tail was in no clip, silently.
    Now it joins the clip before it where that is still open, and a TailNotScored row says so where it is not."""
    from testing.films import make_truncated
    from tests.test_decode import decode
    source = _film(tmp_path / "full.mkv", _cfr(10.0), audio_s=10.0)
    film = make_truncated(tmp_path / "cut.mkv", source=source, keep=0.82)
    clips, errors, stats = decode(film, segment="window", window_s=4.0, image_size=32)
    assert 8.0 < stats["media_end_s"] < 9.0
    covered = clips[-1].spec.end_s >= stats["media_end_s"] - 0.05
    said = [e for e in errors if e.error_type == "TailNotScored"]
    assert covered or (said and f"{stats['media_end_s']:.2f}s" in said[0].message and not said[0].fatal)
