"""Why an MP4 / QuickTime file cannot be read (transforms.mp4_atoms): cut short, bytes lost or added in the middle,
a damaged start, a damaged index; told apart from the atoms' headers, and shown in the film's error row."""
import struct

import pytest

from testing.films import make_film, make_text_as_video
from transforms.discover import film_id_for
from transforms.elements import FilmRef
from transforms.mp4_atoms import diagnosis
from transforms.probe import ProbeFilm


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    """An mp4 as cameras and encoders write it: media data (mdat) first, the index (moov) last."""
    path = make_film(tmp_path_factory.mktemp("mp4") / "film.mp4", duration_s=4.0, size=(96, 64))
    data = path.read_bytes()
    moov = data.rfind(b"moov") - 4
    assert data[36:40] == b"mdat" or b"mdat" in data[:64]
    assert struct.unpack(">I", data[moov:moov + 4])[0] == len(data) - moov  # the index ends the file
    return data, moov


def _why(tmp_path, data: bytes, name: str = "copy.mp4"):
    path = tmp_path / name
    path.write_bytes(data)
    return diagnosis(str(path), len(data))


def test_a_copy_cut_short_says_how_much_was_written(tmp_path, mp4):
    data, moov = mp4
    why = _why(tmp_path, data[:len(data) // 2])
    assert why.startswith("the file was cut short: its mdat atom") and "written); its index (moov)" in why
    assert "cut short inside its index" in _why(tmp_path, data[:moov + 20])


def test_bytes_lost_or_added_in_the_middle_are_counted(tmp_path, mp4):
    data, moov = mp4
    middle = moov // 2
    assert "1,000 bytes are missing in the middle" in _why(tmp_path, data[:middle] + data[middle + 1000:])
    assert "300 bytes were added in the middle" in _why(tmp_path, data[:middle] + data[middle:middle + 300] + data[middle:])


def test_a_damaged_start_and_a_damaged_index(tmp_path, mp4):
    data, moov = mp4
    assert "start of the file is damaged (its index at the end is whole" in _why(tmp_path, b"\xa7" * 16 + data[16:])
    stop = _why(tmp_path, data[:moov] + b"\x00\x00\x00\x02garbage" + data[moov + 11:])
    assert stop.startswith(f"its atoms stop making sense at byte {moov:,}")
    whole = bytearray(data)
    whole[moov + 200:moov + 400] = bytes(200)  # inside the index; its atom's length still right
    assert "index (moov) is damaged" in _why(tmp_path, bytes(whole))


def test_other_files_get_no_mp4_diagnosis(tmp_path, mp4):
    text = make_text_as_video(tmp_path / "text.mp4")
    assert "another kind of file" in diagnosis(str(text), text.stat().st_size)
    mkv = make_film(tmp_path / "film.mkv", duration_s=1.0)
    assert diagnosis(str(mkv), mkv.stat().st_size) is None
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(b"\x00" * 64 + mkv.read_bytes()[64:])
    assert diagnosis(str(cut), cut.stat().st_size) is None  # not an MP4 by its bytes or its name


def test_the_error_row_carries_the_diagnosis(tmp_path, mp4):
    path = tmp_path / "interrupted.mp4"
    path.write_bytes(mp4[0][:len(mp4[0]) * 2 // 3])
    ref = FilmRef(str(path), path.stat().st_size, film_id_for(str(path)), "fp")
    (out,) = list(ProbeFilm().process(ref))
    assert out.tag == "errors" and out.value.fatal and out.value.stage == "probe"
    assert out.value.message.startswith("not a readable media file: the file was cut short")
    assert "Invalid data found" in out.value.message  # FFmpeg's own words stay, after it
    path.write_bytes(mp4[0][:mp4[1] + 100])  # cut inside the index: FFmpeg opens it and finds no stream
    (out,) = list(ProbeFilm().process(FilmRef(str(path), path.stat().st_size, film_id_for(str(path)), "fp")))
    assert out.value.message.startswith("no video or audio stream: the file was cut short inside its index")


def test_a_streaming_mp4_that_decodes_nothing_says_why(tmp_path):
    """An mp4 made for streaming (its index first) with bytes lost early in its media: it opens, nothing decodes,
    and the decode pass's error says what the atoms say."""
    import numpy as np

    from benchmarks._bench_work import decode_config, film_job
    from testing.films import encode_film, speech_like
    from transforms.decode import DecodeError, decode_film
    data = encode_film(tmp_path / "web.mp4", paint=lambda i, t: np.full((64, 96, 3), (i * 9) % 255, np.uint8),
                       frame_times=[i / 10 for i in range(40)], fps=10, audio=speech_like(4.0), video_codec="libx264",
                       muxer_options={"movflags": "faststart"}).read_bytes()
    media = data.find(b"mdat") + 4
    assert data.find(b"moov") < media
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:media + 100] + data[media + 600:])
    with pytest.raises(DecodeError, match="could be decoded: its mdat atom .* the file is 500 bytes short of that: "
                                          "bytes are missing from its media"):
        list(decode_film(film_job(str(cut)), decode_config()))


def test_an_mp4_whose_start_is_damaged_is_read_through_its_index(tmp_path, mp4):
    """The first bytes (the ftyp atom, the media atom's header) overwritten, the index at the end whole: the film is
    read as its index places it, the whole of it, with a RepairedStart row. Before 2026-12-06 it failed at the probe,
    or (as here: the damage left bytes FFmpeg took for a raw MPEG-4 stream) was read as a film without length or
    sound."""
    import numpy as np

    from benchmarks._bench_work import decode_config, film_job
    from transforms.decode import decode_film
    from transforms.elements import DecodedClip
    data, _ = mp4
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(np.random.default_rng(0).integers(0, 256, 44, dtype=np.uint8).tobytes() + data[44:])
    (ok,) = list(ProbeFilm().process(FilmRef(str(damaged), len(data), film_id_for(str(damaged)), "fp")))
    _, info = ok
    (tmp_path / "whole.mp4").write_bytes(data)
    whole = film_job(str(tmp_path / "whole.mp4"))
    assert info.duration_s == pytest.approx(whole.info.duration_s) and info.has_video and info.has_audio
    out = list(decode_film(film_job(str(damaged)), decode_config()))
    clips = [o for o in out if isinstance(o, DecodedClip)]
    rows = [o for o in out if not isinstance(o, DecodedClip)]
    assert rows[0].error_type == "RepairedStart" and not rows[0].fatal
    assert rows[0].message.startswith("its start was damaged (no MP4 atom there)")
    assert clips and clips[-1].spec.end_s == pytest.approx(whole.info.duration_s, abs=0.15)


def test_a_whole_file_that_starts_with_an_atom_of_an_unknown_type_is_not_repaired(tmp_path, mp4):
    """A camera's own atom first (a type not listed here, a sane length): the file is FFmpeg's to read as it is."""
    from transforms.mp4_atoms import repaired_start
    data, _ = mp4
    own = tmp_path / "camera.mp4"
    own.write_bytes(struct.pack(">I4s", 16, b"xcam") + bytes(8) + data)
    assert repaired_start(str(own)) is None
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(b"\xa7\x13\x00\x9c" * 10 + data[40:])  # the same start as random bytes: repaired
    repaired = repaired_start(str(damaged))
    assert repaired is not None and repaired.read(8)[4:] == b"free"
    repaired.close()
