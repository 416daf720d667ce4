"""IMF and DCP packages for tests: real MXF track files (JPEG 2000 picture, 24-bit PCM sound) written with PyAV's
FFmpeg, an asset map and a composition playlist as the SMPTE schemas lay them out."""
from __future__ import annotations

import uuid
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np

RATE = 48000


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def picture_track(path, colours: Sequence[tuple[int, int, int]], fps: int = 24, size=(96, 64)) -> Path:
    """One frame a colour (a second of each colour: fps frames), JPEG 2000 in an OP1a MXF, as IMF and DCP carry
    the picture."""
    with av.open(str(path), "w", format="mxf") as out:
        s = out.add_stream("jpeg2000", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "rgb24"
        for colour in colours:
            for _ in range(fps):
                frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), colour, np.uint8), format="rgb24")
                out.mux(s.encode(frame))
        out.mux(s.encode())
    return Path(path)


def sound_track(path, seconds: float, freq: float = 440.0, channels: int = 1,
                samples: Optional[np.ndarray] = None) -> Path:
    """A tone (or `samples`, float at 48 kHz), 24-bit PCM in an MXF of its own (the sound of a package lies apart from
    its picture; FFmpeg writes one channel a file, as OP-Atom carries it)."""
    with av.open(str(path), "w", format="mxf_opatom") as out:
        s = out.add_stream("pcm_s24le", rate=RATE, layout="stereo" if channels == 2 else "mono")
        t = np.arange(int(seconds * RATE)) / RATE
        wave = (np.clip(samples, -1, 1) if samples is not None else 0.3 * np.sin(2 * np.pi * freq * t))
        wave = (wave * (2 ** 31 - 1)).astype(np.int32)
        frame = av.AudioFrame.from_ndarray(np.repeat(wave, channels).reshape(1, -1), format="s32",
                                           layout="stereo" if channels == 2 else "mono")
        frame.sample_rate = RATE
        out.mux(s.encode(frame))
        out.mux(s.encode())
    return Path(path)


def _klv(key: bytes, value: bytes) -> bytes:
    return key + b"\x84" + len(value).to_bytes(4, "big") + value


def _klv_wrapped(document: str, resources: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """A timed-text track file as ST 429-5 / ST 2067-2 lay it out: an MXF header partition pack; for each ancillary
    resource (urn:uuid:..., bytes) a TimedTextResourceSubDescriptor in the header metadata (instance UID, the
    resource's UUID, its MIME type, its stream id, under dynamic local tags as asdcplib gives them); the XML document
    as the value of one KLV item (BER length); each resource in a generic stream partition of its own (BodySID = its
    stream id); a footer partition pack."""
    def pack(kind: int, status: int, body_sid: int = 0) -> bytes:
        value = bytearray(88)
        value[60:64] = body_sid.to_bytes(4, "big")
        return _klv(bytes.fromhex("060e2b34020501010d01020101") + bytes([kind, status, 0]), bytes(value))

    def item(tag: int, value: bytes) -> bytes:
        return tag.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value
    descriptor = bytes.fromhex("060e2b34025301010d01010101016400")  # TimedTextResourceSubDescriptor
    data_element = bytes.fromhex("060e2b340101010c0d01050901000000")  # generic stream data element
    essence = bytes.fromhex("060e2b34010201010d01030113010101")  # generic container item
    sids = range(2, 2 + len(resources))  # body SID 1 is the document's
    out = pack(2, 4)
    for (ref, _), sid in zip(resources, sids):
        out += _klv(descriptor, item(0x3C0A, uuid.uuid4().bytes)
                    + item(0xFFFF, uuid.UUID(ref.removeprefix("urn:uuid:")).bytes)
                    + item(0xFFFE, "image/png".encode("utf-16-be")) + item(0xFFFD, sid.to_bytes(4, "big")))
    out += _klv(essence, document.encode("utf-8"))
    for (_, data), sid in zip(resources, sids):
        out += pack(3, 0x11, sid) + _klv(data_element, data)
    return out + pack(4, 4)


def _line_png(text: str) -> bytes:
    """A subtitle line as a PNG picture: the text in a dark outline on a transparent ground, as a DCP or an IMSC1
    image track carries a line for a script without a cinema font."""
    import io

    from PIL import Image

    from testing.picture_subs import render_lines
    values = render_lines([text])  # palette indexes: 1-3 outline, 4-15 the text's shades
    rgba = np.zeros(values.shape + (4,), np.uint8)
    rgba[..., 3] = np.where(values > 0, 255, 0)
    rgba[..., :3] = (np.clip(values.astype(np.int32) - 3, 0, 12) * 235 // 12)[..., None]
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def imsc_track(path, lines: Sequence[tuple[float, float, str]], language: str = "en", images: bool = False) -> Path:
    """An IMSC1 subtitle track file (TTML timed from the file's start, in an MXF wrapping). images: the image
    profile, each line a div whose smpte:backgroundImage names a PNG the track file carries (urn:uuid)."""
    if images:
        refs = [(_urn(), _line_png(text)) for *_, text in lines]
        body = "".join(f'<div begin="{b:.3f}s" end="{e:.3f}s" smpte:backgroundImage="{ref}"/>'
                       for (b, e, _), (ref, _) in zip(lines, refs))
    else:
        refs = []
        body = "<div>" + "".join(f'<p begin="{b:.3f}s" end="{e:.3f}s">{text}</p>' for b, e, text in lines) + "</div>"
    Path(path).write_bytes(_klv_wrapped(
        '<?xml version="1.0" encoding="UTF-8"?><tt xmlns="http://www.w3.org/ns/ttml" '
        'xmlns:smpte="http://www.smpte-ra.org/schemas/2052-1/2010/smpte-tt" '
        f'xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xml:lang="{language}"><body>{body}</body></tt>', refs))
    return Path(path)


def dcp_subtitles(path, lines: Sequence[tuple[float, float, str]], smpte: bool = True, fps: int = 24,
                  images: bool = False) -> Path:
    """A DCP's subtitles: SMPTE ST 428-7 (times in frames at TimeCodeRate) wrapped in an MXF track file, or an
    Interop DCSubtitle XML file (times in ticks of 4 ms); images: each line a PNG picture (_line_png), beside the XML
    (Interop) or carried in the track file and named by its UUID (SMPTE), as a DCP for a script without a cinema font
    carries them."""
    def time(t: float) -> str:
        whole, units = int(t), (round((t % 1) * fps) if smpte else round((t % 1) * 250))
        return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}:{units:0{2 if smpte else 3}d}"

    resources = []

    def content(i: int, text: str) -> str:
        if not images:
            return f"<Text>{text}</Text>"
        if smpte:  # the picture in the track file, named by its UUID
            resources.append((_urn(), _line_png(text)))
            name = resources[-1][0]
        else:
            name = f"{Path(path).stem}_{i + 1:04d}.png"
            (Path(path).parent / name).write_bytes(_line_png(text))
        return f'<Image VAlign="bottom" VPosition="10">{name}</Image>'
    subs = "".join(f'<Subtitle SpotNumber="{i + 1}" TimeIn="{time(b)}" TimeOut="{time(e)}">{content(i, text)}'
                   "</Subtitle>" for i, (b, e, text) in enumerate(lines))
    if smpte:
        Path(path).write_bytes(_klv_wrapped(
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<SubtitleReel xmlns="http://www.smpte-ra.org/schemas/428-7/2010/DCST">'
            f"<Id>{_urn()}</Id><Language>en</Language><EditRate>{fps} 1</EditRate><TimeCodeRate>{fps}</TimeCodeRate>"
            f"<SubtitleList><Font>{subs}</Font></SubtitleList></SubtitleReel>", resources))
    else:
        Path(path).write_text('<?xml version="1.0" encoding="UTF-8"?><DCSubtitle Version="1.0"><Language>English'
                              f"</Language><Font>{subs}</Font></DCSubtitle>")
    return Path(path)


def write_package(folder, reels: Sequence[dict], *, kind: str = "imf", title: str = "Test Title", fps: int = 24,
                  encrypted: bool = False, missing: Sequence[str] = (), ids: Optional[dict] = None) -> Path:
    """A package in `folder`: for each reel {'picture': path, 'sound': path, 'subtitles': path (optional),
    'more_sound': [path, ...] (IMF: further sound sequences, after the first),
    'entry': frames, 'duration': frames} (track files already written there), an asset map and a CPL (IMF: segments
    with a MainImageSequence, a SubtitlesSequence and a MainAudioSequence whose sound is timed in samples; DCP: reels
    of MainPicture, MainSound and MainSubtitle timed in frames).
    Track file names in `missing` are left out of the asset map; `ids` gives track files (by name) the ids another
    package's asset map lists them by (a supplemental package playing its original version's files). Returns the
    CPL's path."""
    folder = Path(folder)
    ids = dict(ids or {})
    for reel in reels:
        for key in ("picture", "sound", "subtitles"):
            if reel.get(key):
                ids.setdefault(Path(reel[key]).name, _urn())
        for more in reel.get("more_sound", ()):
            ids.setdefault(Path(more).name, _urn())
    cpl_id, cpl_name = _urn(), f"CPL_{uuid.uuid4()}.xml"
    key = "<KeyId>urn:uuid:00000000-0000-0000-0000-000000000001</KeyId>" if encrypted else ""

    def frames(reel) -> tuple[int, Optional[int]]:
        return reel.get("entry", 0), reel.get("duration")

    if kind == "imf":
        segments, audio_track, image_track, text_track = [], _urn(), _urn(), _urn()
        more_tracks = [_urn() for _ in range(max(len(r.get("more_sound", ())) for r in reels))]
        for reel in reels:
            entry, dur = frames(reel)
            dur = dur if dur is not None else reel["frames"] - entry
            pic = (f"<Resource><Id>{_urn()}</Id><IntrinsicDuration>{reel['frames']}</IntrinsicDuration>"
                   f"<EntryPoint>{entry}</EntryPoint><SourceDuration>{dur}</SourceDuration>"
                   f"<TrackFileId>{ids[Path(reel['picture']).name]}</TrackFileId>{key}</Resource>")
            per = Fraction(RATE, fps)  # IMF times a sound resource in samples

            def sound(path) -> str:
                return (f"<Resource><Id>{_urn()}</Id><EditRate>{RATE} 1</EditRate><IntrinsicDuration>"
                        f"{int(reel['frames'] * per)}</IntrinsicDuration><EntryPoint>{int(entry * per)}</EntryPoint>"
                        f"<SourceDuration>{int(dur * per)}</SourceDuration>"
                        f"<TrackFileId>{ids[Path(path).name]}</TrackFileId></Resource>")
            snd = sound(reel["sound"]) if reel.get("sound") else ""
            sequences = (f"<cc:MainImageSequence><Id>{_urn()}</Id><TrackId>{image_track}</TrackId><ResourceList>{pic}"
                         "</ResourceList></cc:MainImageSequence>")
            if reel.get("subtitles"):
                sequences += (f"<cc:SubtitlesSequence><Id>{_urn()}</Id><TrackId>{text_track}</TrackId><ResourceList>"
                              f"<Resource><Id>{_urn()}</Id><IntrinsicDuration>{reel['frames']}</IntrinsicDuration>"
                              f"<EntryPoint>{entry}</EntryPoint><SourceDuration>{dur}</SourceDuration><TrackFileId>"
                              f"{ids[Path(reel['subtitles']).name]}</TrackFileId></Resource></ResourceList>"
                              "</cc:SubtitlesSequence>")
            if snd:
                sequences += (f"<cc:MainAudioSequence><Id>{_urn()}</Id><TrackId>{audio_track}</TrackId>"
                              f"<ResourceList>{snd}</ResourceList></cc:MainAudioSequence>")
            for track, more in zip(more_tracks, reel.get("more_sound", ())):  # another language, an M&E
                sequences += (f"<cc:MainAudioSequence><Id>{_urn()}</Id><TrackId>{track}</TrackId>"
                              f"<ResourceList>{sound(more)}</ResourceList></cc:MainAudioSequence>")
            segments.append(f"<Segment><Id>{_urn()}</Id><SequenceList>{sequences}</SequenceList></Segment>")
        cpl = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<CompositionPlaylist xmlns="http://www.smpte-ra.org/schemas/2067-3/2016" '
               'xmlns:cc="http://www.smpte-ra.org/schemas/2067-2/2016">'
               f"<Id>{cpl_id}</Id><ContentTitle>{title}</ContentTitle><EditRate>{fps} 1</EditRate>"
               f"<SegmentList>{''.join(segments)}</SegmentList></CompositionPlaylist>")
    else:
        reel_xml = []
        for reel in reels:
            entry, dur = frames(reel)
            dur, assets = dur if dur is not None else reel["frames"] - entry, ""
            for tag, k in (("MainPicture", "picture"), ("MainSound", "sound"), ("MainSubtitle", "subtitles")):
                if reel.get(k):
                    assets += (f"<{tag}><Id>{ids[Path(reel[k]).name]}</Id><EditRate>{fps} 1</EditRate>"
                               f"<IntrinsicDuration>{reel['frames']}</IntrinsicDuration>"
                               f"<EntryPoint>{entry}</EntryPoint><Duration>{dur}</Duration>{key}</{tag}>")
            reel_xml.append(f"<Reel><Id>{_urn()}</Id><AssetList>{assets}</AssetList></Reel>")
        cpl = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<CompositionPlaylist xmlns="http://www.smpte-ra.org/schemas/429-7/2006/CPL">'
               f"<Id>{cpl_id}</Id><ContentTitleText>{title}</ContentTitleText>"
               f"<ReelList>{''.join(reel_xml)}</ReelList></CompositionPlaylist>")
    (folder / cpl_name).write_text(cpl)
    assets = [(cpl_id, cpl_name)] + [(uid, name) for name, uid in ids.items() if name not in missing]
    listed = "".join(f"<Asset><Id>{uid}</Id><ChunkList><Chunk><Path>{name}</Path></Chunk></ChunkList></Asset>"
                     for uid, name in assets)
    (folder / "ASSETMAP.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><AssetMap xmlns="http://www.smpte-ra.org/schemas/429-9/2007/AM">'
        f"<Id>{_urn()}</Id><AssetList>{listed}</AssetList></AssetMap>")
    return folder / cpl_name


REEL_LINES = [[(0.1, 0.4, "Cut by the entry point."), (1.0, 2.0, "We have to go now.")],
              [(1.0, 2.0, "Where is everyone?")], [(0.5, 1.5, "Third reel.")], [(0.5, 1.5, "Fourth reel.")]]


def make_package(folder, *, kind: str = "imf", reels: int = 2, seconds_per_reel: int = 3, fps: int = 24,
                 entry: int = 0, subtitles: Optional[str] = None, **kw) -> Path:
    """A two-reel package (a picture and a sound track file per reel); reel i shows colour i and sounds tone i.
    `entry` frames are cut from the start of every reel (the CPL's entry points). subtitles: 'imsc' (IMF), 'smpte'
    or 'interop' (DCP; with '-png', e.g. 'imsc-png', the lines as PNG pictures) writes a subtitle track file a reel
    holding REEL_LINES[i], timed from the file's start.
    Returns the CPL's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    colours = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (200, 200, 30)]
    specs = []
    for i in range(reels):
        pic = picture_track(folder / f"reel{i + 1}_picture.mxf", [colours[i % 4]] * seconds_per_reel, fps)
        snd = sound_track(folder / f"reel{i + 1}_sound.mxf", seconds_per_reel, freq=300.0 + 200 * i)
        spec = {"picture": pic, "sound": snd, "frames": seconds_per_reel * fps, "entry": entry}
        if subtitles in ("imsc", "imsc-png"):
            spec["subtitles"] = imsc_track(folder / f"reel{i + 1}_subtitles_en.mxf", REEL_LINES[i],
                                           images=subtitles == "imsc-png")
        elif subtitles in ("smpte", "smpte-png", "interop", "interop-png"):
            smpte = subtitles.startswith("smpte")
            spec["subtitles"] = dcp_subtitles(folder / f"reel{i + 1}_sub.{'mxf' if smpte else 'xml'}", REEL_LINES[i],
                                              smpte=smpte, fps=fps, images=subtitles.endswith("-png"))
        specs.append(spec)
    return write_package(folder, specs, kind=kind, fps=fps, **kw)
