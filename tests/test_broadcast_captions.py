"""Broadcast caption and subtitle readers: EBU STL time codes on a master's timecode (transforms/stl.py), the CEA-608
decoder's text mode and repeated control codes (transforms/cea608.py), and A53 captions whose padding is marked
invalid (transforms/video_captions.py). Inputs are built here, small: byte pairs, STL bytes, a 3 s recording."""
import pytest

from testing import captions as cc
from testing.captions import stl_bytes
from testing.films import make_film
from transforms import video_captions
from transforms.cea608 import Cea608Decoder
from transforms.discover import film_id_for
from transforms.elements import FilmRef
from transforms.probe import probe_film
from transforms.stl import parse_stl
from transforms.subtitles import load_cues
from transforms.video_captions import read_video_captions

FRAME_S = 1001 / 30000
RU2, CR, PAC15, EDM = (0x14, 0x25), (0x14, 0x2D), (0x14, 0x70), (0x14, 0x2C)
TR, RTD, RCL, EOC, NOTE = (0x14, 0x2A), (0x14, 0x2B), (0x14, 0x20), (0x14, 0x2F), (0x11, 0x37)


def decode(words) -> list[tuple[float, float, str]]:
    """Byte pairs one frame apart through a CEA-608 decoder; a float in `words` sets the time of the next pair."""
    decoder, t = Cea608Decoder(), 0.0
    for w in words:
        if isinstance(w, float):
            t = w
            continue
        decoder.word(w[0], w[1], t)
        t += FRAME_S
    return decoder.finish(t)


def chars(text: str) -> list[tuple[int, int]]:
    """A row's characters as byte pairs (a last odd one padded with 0)."""
    b = [ord(c) for c in text] + [0] * (len(text) % 2)
    return [(b[i], b[i + 1]) for i in range(0, len(b), 2)]


def test_text_mode_characters_are_not_captions():
    """TR (text restart) and RTD (resume text display) send the text service T1 (a station's name, a programme
    guide): its characters are dropped until RCL, RU or RDC brings the captions back (before 2026-12-06 they were
    appended to the caption on screen)."""
    lines = decode([RU2, RU2, PAC15, PAC15] + chars("HELLO THERE") + [1.0, TR, TR] + chars("WXYZ-TV NEWS AT 11")
                   + [CR, CR, NOTE, NOTE] + [2.0, RU2, RU2, CR, CR, PAC15, PAC15] + chars("NEXT LINE") + [4.0, CR, CR])
    assert [text for *_, text in lines] == ["HELLO THERE", "NEXT LINE"]
    assert lines[0][1] == pytest.approx(2.0 + 2 * FRAME_S)  # T1's CR did not roll the caption up
    # RTD, then pop-on captions: RCL ends text mode, the caption loaded after it is shown at its EOC
    lines = decode([RTD, RTD] + chars("WEATHER 21C") + [RCL, RCL, PAC15, PAC15] + chars("IT IS RAINING")
                   + [1.0, EOC, EOC, 3.0, EDM, EDM])
    assert lines == [(1.0, 3.0, "IT IS RAINING")]


def test_only_the_immediate_copy_of_a_control_code_is_dropped():
    """Control codes are sent twice (one survives a transmission error): the second copy right after the first is
    dropped, a third is a new code, so "♪♪" sent as four pairs is two notes (before 2026-12-06 one)."""
    lines = decode([RU2, RU2, PAC15, PAC15, NOTE, NOTE, NOTE, NOTE] + chars(" LA LA ") + [NOTE, NOTE, NOTE, NOTE]
                   + [3.0, CR, CR])
    assert [text for *_, text in lines] == ["♪♪ LA LA ♪♪"]
    once = decode([RU2, RU2, PAC15, PAC15, NOTE, NOTE] + chars("HI") + [1.0, CR, CR])
    assert [text for *_, text in once] == ["♪HI"]


def test_stl30_labels_on_a_masters_timecode():
    """STL30 (29.97 fps) time codes on a master's timecode are read on the clock its start timecode is read on:
    whole hours as labelled, frames after them as they run (transforms.timecode.label_seconds, as SCC's), so
    01:00:05:00 is 5.005 s after 01:00:00:00 (before 2026-12-06 8.6 s: counted as frames from 00:00:00:00)."""
    subs = [((1, 0, 5, 0), (1, 0, 7, 0), b"Five seconds in."), ((1, 0, 9, 0), (1, 0, 11, 0), b"Nine seconds in.")]
    lines, _, warnings = parse_stl(stl_bytes(subs, fps=30, programme_start="00000000"))
    assert [(round(a, 3), round(b, 3)) for a, b, _ in lines] == [(3605.005, 3607.007), (3609.009, 3611.011)]
    assert not warnings
    lines, _, _ = parse_stl(stl_bytes(subs, fps=30, programme_start="01000000"))  # the TCP names the master's start
    assert [(round(a, 3), round(b, 3)) for a, b, _ in lines] == [(5.005, 7.007), (9.009, 11.011)]
    # STL25 labels run with the clock: as before, to the bit
    subs25 = [((10, 0, 1, 0), (10, 0, 3, 12), b"Where were you?")]
    programme = parse_stl(stl_bytes(subs25, programme_start="10000000"))[0]
    assert programme == [(1.0, pytest.approx(3.48), "Where were you?")]
    assert parse_stl(stl_bytes(subs25))[0] == [(900025 / 25, 900087 / 25, "Where were you?")]


def test_stl30_sidecar_of_a_master_lands_on_the_films_clock(tmp_path):
    """An STL30 sidecar beside a master whose first frame is 01:00:00:00 (the GSI TCP left 00:00:00:00, as many
    writers leave it): its lines move back by the master's start and land where their frames are."""
    film = make_film(tmp_path / "master.mov", duration_s=8.0, fps=5, size=(32, 32), audio=False,
                     timecode="01:00:00:00")
    (tmp_path / "master.stl").write_bytes(stl_bytes([((1, 0, 5, 0), (1, 0, 7, 0), b"Five seconds in.")], fps=30))
    ref = FilmRef(str(film), film.stat().st_size, film_id_for(str(film)), "fp")
    cues, warnings, source = load_cues(ref, probe_film(str(film)))
    assert source.endswith("master.stl") and any("moved back" in w for w in warnings)
    assert [(round(c.start_s, 3), round(c.end_s, 3), c.text) for c in cues] == [(5.005, 7.007, "Five seconds in.")]


def _invalid_padding(pairs):
    """A53 data of a picture without a caption as many encoders send it: its field 1 slot marked cc_valid 0."""
    if pairs != ["8080"]:
        return ORIGINAL_SEI(pairs)
    payload = b"\xb5\x00\x31GA94\x03" + bytes([0x40 | 1, 0xFF, 0xF8, 0x80, 0x80, 0xFF])
    return b"\x00\x00\x00\x01" + cc._escape(bytes([0x06, 0x04, len(payload)]) + payload + b"\x80")


ORIGINAL_SEI = cc.a53_sei


def test_a53_padding_marked_invalid_counts_as_caption_data(tmp_path, monkeypatch):
    """A recording whose pictures all carry A53 data, its unused field 1 slots marked invalid, whose first caption
    comes after the first PROBE_PACKETS pictures (titles): read to its captions (before 2026-12-06 passed over as
    a film without captions: only valid pairs counted). One without A53 data there is still passed over."""
    monkeypatch.setattr(video_captions, "PROBE_PACKETS", 15)  # the first caption is loaded from picture 26 on
    events = cc.pop_on(1.2, 2.2, ["HELLO"])
    monkeypatch.setattr(cc, "a53_sei", _invalid_padding)
    padded = cc.make_captioned_recording(tmp_path / "padded.ts", events, duration_s=3.0)
    lines = read_video_captions(str(padded))
    assert [text for *_, text in lines] == ["HELLO"]
    assert lines[0][0] == pytest.approx(1.2, abs=0.1) and lines[0][1] == pytest.approx(2.2, abs=0.1)
    monkeypatch.setattr(cc, "a53_sei", lambda pairs: b"" if pairs == ["8080"] else ORIGINAL_SEI(pairs))
    bare = cc.make_captioned_recording(tmp_path / "bare.ts", events, duration_s=3.0)
    assert read_video_captions(str(bare)) == []  # no A53 data in the first packets: not read further
