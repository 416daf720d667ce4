"""DVB teletext subtitles (the subtitle page of a European broadcast recording, e.g. 888) are read as the film's
lines (transforms.teletext): no OCR, no speech recognition. The recordings are made with testing.teletext."""
from pathlib import Path

import pytest

from pipeline.run import run
from testing.films import make_film
from testing import teletext as tt
from testing.teletext import page_pes, with_teletext
from tests.test_pipeline_media import BASE, table
from transforms.discover import film_id_for
from transforms.elements import FilmRef
from transforms.probe import probe_film
from transforms.subtitles import LoadSubtitles, load_cues
from transforms.teletext import data_units, hamming84, read_teletext

EVENTS = [(1.0, 3.0, ["Good evening."]), (4.0, 6.5, ["- Where were you?", "- At home!"])]


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    return make_film(tmp_path_factory.mktemp("films") / "source.ts", duration_s=9.0)


def cues_of(path: Path, **kw):
    ref = FilmRef(str(path), path.stat().st_size, film_id_for(str(path)), "fp")
    return load_cues(ref, probe_film(str(path)), **kw)


def test_a_recordings_teletext_subtitles_are_its_lines(tmp_path, film):
    """Page 888's subtitles: each shown from its page header until the empty page that clears it, a subtitle's two
    rows as one line, on the film's clock; the film needs no speech recognition."""
    ts = with_teletext(film, tmp_path / "news.ts", EVENTS)
    info = probe_film(str(ts))
    assert info.teletext_streams == (2,) and info.image_subtitle_codecs == ()
    cues, warnings, source = cues_of(ts)
    assert source == "teletext:2:888" and not warnings
    offset = cues[0].start_s - 1.0  # the transport stream's clock starts at its first packet
    assert [(round(c.start_s - offset, 3), round(c.end_s - offset, 3), c.text) for c in cues] == [
        (1.0, 3.0, "Good evening."), (4.0, 6.5, "- Where were you? - At home!")]
    ref = FilmRef(str(ts), ts.stat().st_size, film_id_for(str(ts)), "fp")
    job = list(LoadSubtitles("c", transcribe="auto").process((ref, info)))[-1]
    assert not job.needs_asr and not job.warnings and len(job.cues) == 2


def test_national_characters_pages_and_damage(tmp_path, film):
    """The header's national option gives the letters a language needs (German: umlauts, sharp s); a page without
    the subtitle flag (an index page) is not dialogue; of two subtitle pages the one the text path reads is taken;
    a data unit whose bytes are damaged is skipped, not the stream."""
    german = {"\u00fc": 0x7D, "\u00df": 0x7E, "\u00f6": 0x7C}
    de = with_teletext(film, tmp_path / "de.ts", [(1.0, 3.0, ["Gr\u00fc\u00dfe aus K\u00f6ln!"])], page=0x150,
                       national=4, codes=german, language="ger")
    ((key, (events, tag)),) = read_teletext(str(de)).items()
    assert key == (2, 0x150) and tag == "ger" and [t for *_, t in events] == ["Gr\u00fc\u00dfe aus K\u00f6ln!"]
    # ETS 300 706's Hamming 8/4 code words for 0..15 (section 8.2)
    assert [tt.hamming84(n) for n in range(16)] == [0x15, 0x02, 0x49, 0x5E, 0x64, 0x73, 0x38, 0x2F, 0xD0, 0xC7, 0x8C,
                                                    0x9B, 0xA1, 0xB6, 0xFD, 0xEA]
    index = with_teletext(film, tmp_path / "index.ts", [(3.0, 4.0, ["Sorry, wrong number."])],
                          more=[(1.0, page_pes(0x100, ["NEWS 101  SPORT 300"], subtitle=False))])
    assert [[t for *_, t in events] for events, _ in read_teletext(str(index)).values()] == [["Sorry, wrong number."]]
    damaged = bytes([0x10]) + bytes([0x03, 0x2C]) + bytes(10)  # a data unit cut short
    assert data_units(damaged) == [] and data_units(b"\x99garbage") == []
    assert all(hamming84(tt.hamming84(n) ^ 1 << k) == n for n in range(16) for k in range(8))  # one bit: corrected
    assert hamming84(tt.hamming84(5) ^ 0b11) == -1  # two bits: detected
    from transforms.teletext import _text
    row = bytearray(tt.row_text("Hello"))
    row[3] ^= 0x01  # 'e' with a flipped bit fails its parity: a space, not a wrong letter
    assert _text(bytes(row), 0) == "H llo"
    english = with_teletext(film, tmp_path / "en.ts", [(1.0, 2.0, ["Where is the station?"])], page=0x888)
    assert [c.text for c in cues_of(english)[0]] == ["Where is the station?"]


def test_a_recording_with_teletext_through_the_pipeline(tmp_path, film):
    (tmp_path / "archive").mkdir()
    with_teletext(film, tmp_path / "archive" / "news.ts", EVENTS)
    out = tmp_path / "out"
    summary = run(["--input", str(tmp_path / "archive"), "--output", str(out), "--segment", "subtitle"] + BASE)
    assert summary["ok"] == 1
    said = [(r["text"], r["text_source"]) for r in table(out, "clips") if r["text"]]
    assert said == [("Good evening.", "subtitle"), ("- Where were you? - At home!", "subtitle")]
    assert not table(out, "errors")


CZECH = dict(zip("#ůčťžýířéáěúš", (0x23, 0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E)))


def test_czech_slovak_letters_and_an_unknown_national_option(tmp_path, film, caplog):
    """The Czech / Slovak national option (C12-C14 = 3, ETS 300 706 table 36) gives its letters (before 2026-12-06
    read as English's symbols); an option the reader does not know is read as English, with one warning for the
    film, however many of its headers name it."""
    from transforms.teletext import _text
    assert _text(tt.row_text("#ůčťžýířéáěúš", CZECH), 3) == "#ůčťžýířéáěúš"
    cz = with_teletext(film, tmp_path / "cz.ts", [(1.0, 3.0, ["Děkuji, čau. Ještě týden, řekl."])], national=3,
                       codes=CZECH, language="cze")
    warnings: list[str] = []
    ((events, tag),) = read_teletext(str(cz), warnings=warnings).values()
    assert [t for *_, t in events] == ["Děkuji, čau. Ještě týden, řekl."] and tag == "cze" and warnings == []
    other = with_teletext(film, tmp_path / "other.ts", [(1.0, 2.0, ["Good evening."]), (3.0, 4.0, ["Bye."])],
                          national=7)
    ((events, _),) = read_teletext(str(other), warnings=warnings).values()
    assert [t for *_, t in events] == ["Good evening.", "Bye."]
    assert len(warnings) == 1 and "page 888" in warnings[0] and "option 7" in warnings[0]
    with caplog.at_level("WARNING", logger="transforms.teletext"):  # without a list to add it to: logged, once
        read_teletext(str(other))
    assert len([r for r in caplog.records if "option 7" in r.getMessage()]) == 1


def _refresh(page: int = 0x888) -> bytes:
    """The subtitle page's header sent again without C4 (erase) and no rows: the subtitle stays up."""
    return bytes([0x10]) + tt._unit(page >> 8, 0, tt.header(page & 0xFF, erase=False))


def test_a_header_without_erase_or_a_repeated_page_keeps_the_line(tmp_path, film):
    """Only a header with C4 (erase) ends the subtitle on screen: one re-sent without it keeps the page (its rows
    update in place), and a page sent again in full with the same text goes on as the same line. Before 2026-12-06
    the refresh cut the line short at 2 s and the repeat gave it twice."""
    def lines(path):
        ((events, _),) = read_teletext(str(path)).values()
        return [(round(a, 2), round(b, 2), t) for a, b, t in events]
    said = [(1.0, 5.0, ["I never said that."])]
    refreshed = with_teletext(film, tmp_path / "refresh.ts", said, more=[(2.0, _refresh()), (3.0, _refresh())])
    assert lines(refreshed) == [(1.0, 5.0, "I never said that.")]
    repeated = with_teletext(film, tmp_path / "repeat.ts", said,
                             more=[(2.0, page_pes(0x888, ["I never said that."]))])
    assert lines(repeated) == [(1.0, 5.0, "I never said that.")]
    # without C4 a row sent again replaces the row it names; with C4 a new text is a new line
    update = bytes([0x10]) + tt._unit(8, 0, tt.header(0x88, erase=False)) + tt._unit(8, 22, tt.row_text("Never."))
    changed = with_teletext(film, tmp_path / "changed.ts", said,
                            more=[(2.0, update), (3.0, page_pes(0x888, ["Ever."]))])
    assert lines(changed) == [(1.0, 3.0, "Never."), (3.0, 5.0, "Ever.")]
