"""Subtitle pictures a timed-text track file carries (SMPTE ST 429-5 DCP subtitles, IMSC1 image profile in IMF):
found by the UUID their document cites, read by OCR; a picture that is missing costs its line only."""
import base64
import uuid
import xml.etree.ElementTree as ET

import pytest

from testing.packages import _klv_wrapped, _line_png, dcp_subtitles, imsc_track
from transforms import imf
from transforms.mxf_resources import ancillary_resources, klv_items, resource_id
from transforms.ttml import parse_ttml


def _refs(n):
    return [f"urn:uuid:{uuid.uuid4()}" for _ in range(n)]


def test_resources_are_found_by_the_uuid_their_descriptor_gives():
    refs = _refs(3)
    data = _klv_wrapped("<SubtitleReel/>", [(r, f"picture {i}".encode()) for i, r in enumerate(refs)])
    found = ancillary_resources(data)
    assert {resource_id(r): found[resource_id(r)] for r in refs} == {
        resource_id(r): f"picture {i}".encode() for i, r in enumerate(refs)}
    # a run-in before the header partition and fill items between the KLVs do not matter
    fill = bytes.fromhex("060e2b34010101020301021001000000") + b"\x83\x00\x00\x05" + bytes(5)
    head = data.index(bytes.fromhex("060e2b34025301010d010101"))  # after the header partition pack
    padded = b"RUN-IN" + data[:head] + fill + data[head:]
    assert ancillary_resources(padded) == found
    assert ancillary_resources(b"<DCSubtitle/>") == {} and ancillary_resources(_klv_wrapped("<tt/>")) == {}
    # a file read up to a size limit: the items before the cut are still read, none is half-read
    cut = data[:data.rindex(b"picture 2") - 3]
    assert set(ancillary_resources(cut)) == {resource_id(r) for r in refs[:2]}
    assert all(k.startswith(b"\x06\x0e\x2b\x34") for k, _ in klv_items(cut))


def test_resource_ids_as_writers_give_them():
    u = uuid.uuid4()
    assert resource_id(f"urn:uuid:{u}") == resource_id(str(u)) == resource_id(u.hex.upper()) == str(u)
    assert resource_id("reel1_0001.png") is None


def test_a_smpte_dcp_picture_missing_from_its_track_file_loses_its_line_only(tmp_path):
    path = dcp_subtitles(tmp_path / "sub.mxf", [(1.0, 2.0, "We have to go now."), (3.0, 4.0, "Where is everyone?")],
                         images=True)
    data = path.read_bytes()
    gone = data.index(b"\x89PNG")  # the first picture's bytes: its stream is dropped, its descriptor kept
    start = data.rindex(bytes.fromhex("060e2b34020501010d010201010311"), 0, gone)
    end = data.index(bytes.fromhex("060e2b34020501010d0102010103"), gone)
    path.write_bytes(data[:start] + data[end:])
    document = imf._xml_document(path.read_bytes())
    pictures = imf._pictures(str(path), path.read_bytes())
    events, language, warnings = imf.dcp_subtitle_events(ET.fromstring(document), pictures)
    assert [t for *_, t in events] == ["", "Where is everyone?"] and language == "en"
    assert len(pictures.warnings()) == 1 and "not among the 1 resources the track file carries" in pictures.warnings()[0]


def test_imsc1_image_lines_embedded_in_the_document_are_read(tmp_path):
    """SMPTE-TT / IMSC1 may embed a picture in the document (a base64 smpte:image in its head, named '#id')."""
    from transforms.image_subtitles import SubtitlePictures
    png = base64.b64encode(_line_png("Where is everyone?")).decode()
    doc = ('<tt xmlns="http://www.w3.org/ns/ttml" xmlns:smpte="http://www.smpte-ra.org/schemas/2052-1/2010/smpte-tt">'
           f'<head><metadata><smpte:image xml:id="img1" imagetype="PNG" encoding="Base64">{png}</smpte:image>'
           '</metadata></head><body><div begin="1s" end="2.5s" smpte:backgroundImage="#img1"/></body></tt>')
    asked = []
    pictures = SubtitlePictures(lambda ref: asked.append(ref) or b"")
    assert parse_ttml(doc, pictures)[0] == [(1.0, 2.5, "Where is everyone?")] and not asked
    # without a pictures reader (a sidecar) the line is left out, and said so
    lines, _, warnings = parse_ttml(doc)
    assert lines == [] and "1 line(s) given as pictures" in warnings[0]


def test_an_imsc1_image_track_reads_as_its_text_track_does(tmp_path):
    lines = [(0.5, 1.5, "We have to go now."), (2.0, 3.0, "Where is everyone?")]
    text, pictures = imsc_track(tmp_path / "t.mxf", lines), imsc_track(tmp_path / "p.mxf", lines, images=True)
    read = []
    for path in (text, pictures):
        document = imf._xml_document(path.read_bytes())
        read.append(parse_ttml(document, imf._pictures(str(path), path.read_bytes()))[0])
    assert read[0] == read[1] == lines


@pytest.mark.parametrize("ref", ["urn:uuid:00000000-0000-0000-0000-000000000000", "not-a-uuid.png"])
def test_a_reference_to_no_carried_picture_is_a_warning(tmp_path, ref):
    path = imsc_track(tmp_path / "p.mxf", [(0.5, 1.5, "We have to go now.")], images=True)
    pictures = imf._pictures(str(path), path.read_bytes())
    assert pictures(ref) == "" and "not among the 1 resources" in pictures.warnings()[0]


def test_an_imsc1_image_sidecar_reads_the_pictures_beside_it(tmp_path):
    """An image-profile TTML sidecar, delivered with its PNGs in the film's folder (as streaming services take
    image subtitles): each div's picture is read from the file it names; a missing one is a warning."""
    from testing.films import make_film
    from transforms.discover import film_id_for
    from transforms.elements import FilmRef
    from transforms.probe import probe_film
    from transforms.subtitles import load_cues
    film = make_film(tmp_path / "feature.mp4", duration_s=6.0)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "0001.png").write_bytes(_line_png("We have to go now."))
    (tmp_path / "feature.en.ttml").write_text(
        '<tt xmlns="http://www.w3.org/ns/ttml" xmlns:smpte="http://www.smpte-ra.org/schemas/2052-1/2010/smpte-tt">'
        '<body><div begin="1s" end="2s" smpte:backgroundImage="images/0001.png"/>'
        '<div begin="3s" end="4s" smpte:backgroundImage="images/0002.png"/></body></tt>')
    ref = FilmRef(str(film), film.stat().st_size, film_id_for(str(film)), "fp")
    cues, warnings, source = load_cues(ref, probe_film(str(film)))
    assert source.endswith("feature.en.ttml")
    assert [(c.start_s, c.end_s, c.text) for c in cues] == [(1.0, 2.0, "We have to go now.")]
    assert any("images/0002.png" in w and "feature.en.ttml" in w for w in warnings)


def test_pictures_that_are_not_there_are_not_asked_for_one_by_one():
    """A document naming a thousand pictures that were not delivered: after SubtitlePictures.GIVE_UP_AFTER misses
    without one read, the rest are not fetched (each would be a request on cloud storage)."""
    from transforms.image_subtitles import SubtitlePictures
    asked = []

    def fetch(ref):
        asked.append(ref)
        raise FileNotFoundError(ref)
    pictures = SubtitlePictures(fetch)
    assert all(pictures(f"{i:04d}.png") == "" for i in range(1000))
    assert len(asked) == SubtitlePictures.GIVE_UP_AFTER
    assert any("980 more picture(s) not asked for" in w for w in pictures.warnings())
    # one picture read keeps the others asked for: a few missing among many is a few lost lines
    good = SubtitlePictures(lambda ref: _line_png("Where is everyone?") if ref == "0000.png" else fetch(ref))
    assert good("0000.png") == "Where is everyone?"
    assert all(good(f"{i:04d}.png") == "" for i in range(1, 50)) and len(good.failed) == 49
