"""Probe a film with PyAV: duration, frame rate, size, codecs, audio present, text subtitle streams.

Reads only the container header (no decoding), so it is cheap; only a master with one mono track per channel
has a few seconds of each track decoded, to find the one with the dialogue. Files that are not media at all
(zero bytes, text named .mp4, a truncated header) fail here with a clear message.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
import re
from typing import Iterable, Optional

import apache_beam as beam
import av

from transforms import attempts, dvd, imf, mp4_atoms
from transforms.discover import local_path
from transforms.elements import ERRORS_TAG, FilmError, FilmInfo, FilmRef
from transforms.mono import MonoResampler
from transforms.ts_programs import programme_tracks

log = logging.getLogger(__name__)

TEXT_SUBTITLE_CODECS = ("subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text", "microdvd", "subviewer")
# picture subtitle decoders whose text is read by OCR (transforms.image_subtitles): Blu-ray, DVD, broadcast
PICTURE_CODECS = ("pgssub", "dvdsub", "dvbsub")
CAPTION_CODECS = ("cc_dec", "eia_608")  # CEA-608 caption tracks (QuickTime c608 in ProRes masters): decoder, codec


class NotAFilm(ValueError):
    """The file opened but holds neither video nor audio we can use."""


# errno values of a storage that failed (a disk's bad sector, a network share or an object store that dropped the
# connection), not of a file's bytes: reading again may work
STORAGE_ERRNOS = frozenset({errno.EIO, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED,
                            errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ESTALE, errno.ENOTCONN,
                            errno.EAGAIN})


# errno values of a file that is not there or not readable now (moved, deleted or made unreadable while the run went
# on): not its bytes either, so the next run tries again; as a probe or decode failure a film of unchanged bytes was
# never retried (a film moved mid-run stayed failed at its new path, night after night)
GONE_ERRNOS = frozenset({errno.ENOENT, errno.EACCES, errno.EPERM})


def file_gone(exc: BaseException) -> bool:
    """Whether an error says the film's file is not there or not readable now (GONE_ERRNOS), not what its bytes hold."""
    return isinstance(exc, OSError) and getattr(exc, "errno", None) in GONE_ERRNOS


class ReadFailed(RuntimeError):
    """The storage failed while a film was read, not its content: the film fails at the stage `read`, which the
    next run retries (a truncated or damaged file is the film's own: the part that decodes is kept)."""


def storage_failure(exc: BaseException, path: Optional[str] = None) -> bool:
    """Whether an error reading a film is its storage's (a network share, an object store, a failing disk). FFmpeg's
    demuxers also give EIO for a file that ends inside an element (a Matroska file cut in its header): given the
    film's `path`, an EIO while its head and tail read back whole (_reads_back) is the file's own, on local disk and,
    since 2026-12-06, on a bucket too (before, such a file on gs:// was retried every night)."""
    if isinstance(exc, ReadFailed):
        return True
    if isinstance(exc, av.error.FFmpegError):  # FFmpeg's own file reads: by errno (its end of file is not one)
        return getattr(exc, "errno", None) in STORAGE_ERRNOS and not (path and _reads_back(path))
    return isinstance(exc, OSError)  # raised by the file object a remote path (gs://, ...) is read through


READ_BACK_BYTES = 64 << 20  # of a file's head and of its tail: where a probe reads (headers, indexes)


def _open_raw(path: str):
    """A file's bytes as they are: a local file, or one on any Beam filesystem (a bucket: ranged reads)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    local = local_path(path)
    return open(local, "rb") if local is not None else FileSystems.open(
        path, compression_type=CompressionTypes.UNCOMPRESSED)


TEXT_SNIFF_BYTES = 4096  # every container's first 4 KiB hold binary headers: NUL and other control bytes


VOLUME_DESCRIPTOR = 0x8001  # where ISO 9660 and UDF write their volume descriptors' identifiers (32 KiB in)


def _sniff(path: str) -> tuple[bytes, bytes]:
    """A file's first TEXT_SNIFF_BYTES and the 5 bytes at VOLUME_DESCRIPTOR: one open, for text_start and
    packed_kind (a ranged read or two on a bucket, on a failure path only)."""
    with _open_raw(path) as f:
        head = f.read(TEXT_SNIFF_BYTES)
        f.seek(VOLUME_DESCRIPTOR)
        return head, f.read(5)


def text_start(path: str, head: Optional[bytes] = None) -> Optional[str]:
    """The first line of a file that is text (no control byte but tabs and line ends in its first 4 KiB: UTF-8 or a
    one-byte code page), shortened; None for anything else. Notes, transcripts and checksum lists without an extension
    sit beside films in archives. `head`: its first bytes, where read already (_sniff)."""
    head = _sniff(path)[0] if head is None else head
    if not head or any((b < 0x20 and b not in b"\t\n\r\f") or b == 0x7F for b in head):
        return None
    line = next((x.strip() for x in head.decode("utf-8", errors="replace").splitlines() if x.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


# Files that are not media but hold it, or sit beside it in an archive: told by their first bytes (a disc image by its
# volume descriptors, 32 KiB in), so the failure says what to do instead of "not a readable media file".
PACKED = ((b"PK\x03\x04", "a zip archive"), (b"\x1f\x8b", "a gzip-compressed file"),
          (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!\x1a\x07", "a RAR archive"),
          (b"BZh", "a bzip2-compressed file"), (b"\xfd7zXZ\x00", "an xz-compressed file"),
          (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"))
DISC_DESCRIPTORS = (b"CD001", b"BEA01", b"NSR02", b"NSR03")  # ISO 9660, UDF (DVD and Blu-ray images)


def packed_kind(head: bytes, volume: bytes) -> Optional[str]:
    """What a file FFmpeg cannot read is, from its first bytes and its volume descriptor's (_sniff), when it is a
    container of files rather than of media: an archive, a compressed file or a disc image (with what to do); None
    otherwise."""
    for magic, kind in PACKED:
        if head.startswith(magic):
            return f"{kind}, not audio or video: unpack it and give --input the films inside"
    if head[257:262] == b"ustar":
        return "a tar archive, not audio or video: unpack it and give --input the films inside"
    if volume in DISC_DESCRIPTORS:
        return ("a disc image (ISO 9660 / UDF), not a film: mount or unpack it and give --input its VIDEO_TS or "
                "BDMV folder")
    if head.startswith(b"%PDF"):
        return "a PDF document, not audio or video"
    return None


def _reads_back(path: str) -> bool:
    """Whether a file's first and last READ_BACK_BYTES read without an error (not the storage, then): a local file, or
    one on any Beam filesystem (a bucket: two ranged reads, on a failure path only)."""
    try:
        with _open_raw(path) as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            for start in sorted({0, max(0, size - READ_BACK_BYTES)}):
                f.seek(start)
                left = min(READ_BACK_BYTES, size - start)
                while left > 0:
                    chunk = f.read(min(left, 1 << 24))
                    if not chunk:
                        break
                    left -= len(chunk)
        return True
    except Exception:  # noqa: BLE001 - whatever the storage raises: it did not read back
        return False


MAX_UNKNOWN_STREAM_PACKETS = 1_000_000  # (a bound on demux's restarts, should one not move the file on)
# MP4 / QuickTime: FFmpeg's demuxer moves past a sample before it reads it (mov_read_packet), so after one whose place
# is past the file's end or not readable, a new read goes on with the next sample.
RESUMABLE_FORMATS = frozenset({"mov", "mp4"})
MAX_EMPTY_READS = 20_000  # new reads in a row that give nothing: the file has ended (each takes microseconds)
RESUME_MARGIN_S = 1.0  # a demux that ends this far before its streams' declared end has ended early


def demux(container, *streams, resumed: Optional[list] = None):
    """container.demux(*streams), going on past a packet of a stream FFmpeg found after the file was opened. A PES
    on a PID that no table lists (a bit error in a DVB capture, or a stream that starts mid-way) is such a stream:
    PyAV has no Stream object for it and its demux raises IndexError (PyAV issue 692). The packet is not one of
    `streams`, so it is skipped and a new demux goes on from the next one. Before 2026-12-06 the film failed with
    'decode: IndexError: list index out of range'.

    An MP4 or QuickTime file whose index points past its end or at data that does not read (a damaged sample table:
    a bit flipped in a chunk offset) ends, or fails, early: where the packets stopped more than RESUME_MARGIN_S before
    the streams' declared end (_declared_end), new reads go on with the next sample, as long as one comes within
    MAX_EMPTY_READS.
    PyAV's end-of-file packets (which drain the decoders) are held back until the file has really ended, and each
    time the read goes on, `resumed` gets (the film time it had got to, the reads it took, why it stopped). Before
    2026-12-06 the rest of the film was lost (MediaEndedEarly: a damaged Sintel trailer lost its last 9 s)."""
    resumable = bool(set((container.format.name or "").split(",")) & RESUMABLE_FORMATS)
    end = _declared_end(container, streams) if resumable else None
    held, tries, unknown, why, reached = [], 0, 0, None, -math.inf

    def ended_early() -> bool:
        return end is not None and reached < end - RESUME_MARGIN_S
    while True:
        try:
            for packet in container.demux(*streams):
                if not packet.size:
                    if not tries:  # (the first end's; each later read ends with its own, not kept)
                        held.append(packet)
                    continue
                if tries:  # read on past an early end: the empty packets held were that end's, not the file's
                    held.clear()
                    if resumed is not None:
                        resumed.append((reached, tries, why))
                tries, why = 0, None
                yield from held  # empty packets that were not the end (NUT's last, with a time)
                held.clear()
                if packet.pts is not None and packet.time_base:
                    reached = max(reached, float(packet.pts * packet.time_base))
                yield packet
        except IndexError:
            unknown += 1
            if unknown > MAX_UNKNOWN_STREAM_PACKETS:
                raise av.error.InvalidDataError(errno.EINVAL, "too many packets of streams found after opening")
            log.debug("a packet of a stream found after opening was skipped")
            continue
        except av.error.InvalidDataError as exc:
            if not ended_early():
                raise
            why = why or str(exc)
        if not ended_early() or tries >= MAX_EMPTY_READS:
            break
        tries += 1
    yield from held


def _declared_end(container, streams) -> Optional[float]:
    """Where the streams read end by their own durations (the container's when none says), on the packets' clock."""
    ends = [float((s.start_time or 0) + s.duration) * float(s.time_base) for s in (streams or container.streams)
            if s.duration and s.time_base]
    if ends:
        return max(ends)
    return ((container.duration or 0) + (container.start_time or 0)) / 1e6 if container.duration else None


def read_packets(container, *streams, resumed: Optional[list] = None):
    """demux(container, *streams), with a failure of the storage raised as ReadFailed; the file's own end or
    damage is raised as it is (decode_film keeps what decoded before it). resumed: as demux's."""
    packets = demux(container, *streams, resumed=resumed)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except Exception as exc:
            if storage_failure(exc):
                raise ReadFailed(f"{type(exc).__name__}: {exc}") from exc
            raise
        yield packet


# Metadata (titles, track names) that is not UTF-8, as in old AVI and Matroska releases written in Latin-1, is read
# with U+FFFD for its odd bytes: with PyAV's default ('strict'), av.open itself fails and the film is lost for a title.
METADATA_ERRORS = "replace"


def open_container(path: str):
    """av.open a path; paths on non-local Beam filesystems are opened as file objects through FileSystems; a DVD
    title's first part (VTS_01_1.VOB) with the parts after it, as one stream (transforms.dvd); an IMF / DCP
    composition (its CPL's path) as its picture and sound track files on one clock (transforms.imf)."""
    if imf.is_composition(path):
        return imf.open_composition(path, open_file, storage_failure)
    parts = dvd.title_parts(path)
    if len(parts) > 1:
        return av.open(dvd.ChainedFile(parts), metadata_errors=METADATA_ERRORS)
    return open_file(path)


def open_file(path: str):
    """av.open one file, local or on any Beam filesystem. An MP4 or QuickTime file whose start is damaged while its
    index at the end is whole is read through mp4_atoms.repaired_start (repair_note names it)."""
    local = local_path(path)
    try:
        if local is None:
            from apache_beam.io.filesystem import CompressionTypes
            from apache_beam.io.filesystems import FileSystems
            container = av.open(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED),
                                metadata_errors=METADATA_ERRORS)
        else:
            container = av.open(local, metadata_errors=METADATA_ERRORS)
    except av.error.InvalidDataError:
        repaired = mp4_atoms.repaired_start(path)
        if repaired is None:
            raise
        return _open_repaired(repaired)
    # Damage at an MP4's start can leave bytes FFmpeg takes for a raw stream (an MPEG-4 one: no length, no sound).
    # Only such a file is looked at again: an MP4 that opens as one, or a film of another container named .mp4 (it
    # has a length), costs no read more.
    if (path.lower().endswith(mp4_atoms.EXTENSIONS) and container.duration is None
            and "mov" not in (container.format.name or "").split(",")):
        repaired = mp4_atoms.repaired_start(path)
        if repaired is not None:
            container.close()
            return _open_repaired(repaired)
    return container


def _open_repaired(repaired):
    try:
        return av.open(repaired, metadata_errors=METADATA_ERRORS)
    except Exception:
        repaired.close()
        raise


def repair_note(container) -> Optional[str]:
    """How open_file read a damaged file (mp4_atoms.RepairedStart.note), or None when it read it as it is."""
    return getattr(getattr(getattr(container, "file", None), "file", None), "note", None)


def main_video_stream(container):
    """The film's picture among the real video streams (cover art, attached pictures, is not the film, nor a stream
    FFmpeg has no decoder for: undecodable): the largest, passing over one that lasts less than half the longest (a
    preview, a proxy), then the default, then the first. Before 2026-12-07 the first was taken: a 160x120 thumbnail
    or a 1 s 96x54 proxy stored first was the whole film's picture."""
    real = _pictures(container)
    if len(real) < 2:
        return real[0] if real else None
    lasts = {s.index: _stream_duration(s) for s in real}
    longest = max(lasts.values())

    def rank(s):
        short = 0 < lasts[s.index] < 0.5 * longest
        return (short, -(s.codec_context.width or 0) * (s.codec_context.height or 0),
                not s.disposition & av.stream.Disposition.default, s.index)
    return min(real, key=rank)


def other_pictures(container, chosen) -> list:
    """The real video streams besides the film's picture (main_video_stream): said in a note, not read."""
    return [s for s in _pictures(container) if s.index != chosen.index]


def _pictures(container) -> list:
    """The video streams that may be a film's picture: not cover art (attached pictures), and FFmpeg decodes them."""
    return [s for s in container.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic) and s.codec_context is not None]


def undecodable(container, kind: str) -> list:
    """The `kind` ('video', 'audio') streams FFmpeg has no decoder for: a codec it does not know, or a damaged
    header that names none. They are passed over (main_video_stream, main_audio_stream)."""
    return [s for s in getattr(container.streams, kind) if s.codec_context is None
            and not (s.disposition & av.stream.Disposition.attached_pic)]


# Audio tracks that are not the film's own sound: a commentary, an audio description for blind viewers, a
# broadcast's music-and-effects mix (clean effects: the sound without the dialogue).
NOT_THE_FILMS_SOUND = (av.stream.Disposition.comment | av.stream.Disposition.visual_impaired
                       | av.stream.Disposition.descriptions | av.stream.Disposition.clean_effects)
# The same named only in a track's title, as remuxers and authoring tools leave them without the flag ("Director's
# Commentary", "English AD", "M&E"): before 2026-12-06 such a first track was heard and transcribed as the film.
_COMMENTARY = r"commentar|commentaire|kommentar|comentario|commento"
NOT_THE_FILMS_SOUND_TITLE = re.compile(
    rf"\b({_COMMENTARY}|audio ?descri|audiodeskription|h(ö|oe)rfilm"
    r"|described|descriptive|music (and|&) effects|m ?& ?e\b)|(?-i:\bAD\b)", re.I)
# Subtitle tracks of the same kinds: a commentary's (by the flag or the title) is not the film's dialogue and is not
# read (before 2026-12-07 an English "Commentary" track first was read as the film's lines); one for the deaf
# (SDH: the flag or the title) ranks after a plain track of its language (transforms.subtitles._embedded_sources)
_COMMENTARY_TITLE = re.compile(rf"\b({_COMMENTARY})", re.I)
_SDH_TITLE = re.compile(r"\b(sdh|cc|hoh|hearing[ -]impaired|deaf|malentendants|h(ö|oe)rgesch(ä|ae)digte)\b", re.I)


def _title(stream) -> str:
    """A stream's title as remuxers and authoring tools leave it (its title; an MP4 / MOV track's as FFmpeg reads it
    back, `name`, from the track's udta: before 2026-12-07 not read, so a commentary track remuxed from MKV to MP4
    was heard as the film's sound; its handler's name)."""
    return " ".join((stream.metadata or {}).get(k) or "" for k in ("title", "name", "handler_name"))


def commentary_subtitles(stream) -> bool:
    """Whether a subtitle track is a commentary's: its comment flag or its title."""
    return bool(stream.disposition & av.stream.Disposition.comment or _COMMENTARY_TITLE.search(_title(stream)))


def sdh_subtitles(stream) -> bool:
    """Whether a subtitle track is for the deaf and hard of hearing: its flag or its title."""
    return bool(stream.disposition & av.stream.Disposition.hearing_impaired or _SDH_TITLE.search(_title(stream)))


def not_the_films_sound(stream) -> bool:
    """Whether an audio track is a commentary, an audio description or a mix without the dialogue: by its flags
    (NOT_THE_FILMS_SOUND) or its title (NOT_THE_FILMS_SOUND_TITLE)."""
    return bool(stream.disposition & NOT_THE_FILMS_SOUND or NOT_THE_FILMS_SOUND_TITLE.search(_title(stream)))


def main_audio_stream(container, tracks: Optional[list] = None):
    """The film's own sound among `tracks` (default: every audio track), among those that are not a commentary,
    an audio description or a mix without the dialogue (not_the_films_sound; else among all): the track flagged
    original (the actors' own voices, where a release puts its dub first or flags the dub default), else the one
    flagged default, else the first. A release with a commentary or a dub first is still heard in its own voices."""
    tracks = [s for s in (container.streams.audio if tracks is None else tracks) if s.codec_context is not None]
    usable = [s for s in tracks if not not_the_films_sound(s)] or tracks
    flagged = (s for flag in (av.stream.Disposition.original, av.stream.Disposition.default)
               for s in usable if s.disposition & flag)
    return next(flagged, usable[0] if usable else None)


def film_audio_stream(container, info: FilmInfo):
    """The stream heard as the film's sound: the probe's choice among a master's channel tracks, else
    main_audio_stream's."""
    return container.streams[info.audio_stream] if info.audio_stream is not None else main_audio_stream(container)


# A master's channels as separate mono tracks (MXF and ProRes deliverables: L, R, C, LFE, Ls, Rs, ...): the
# dialogue is on the centre track, which is not the first. The track chosen is the one where Silero VAD hears
# the most speech in a few samples of the film; without a clear voice anywhere, the first stays.
MIN_CHANNEL_TRACKS = 3
SAMPLE_AT, SAMPLE_S = (0.2, 0.5, 0.8), 20.0  # where (share of the duration) and how long the samples are
MIN_DIALOGUE_S = 1.0  # speech VAD must hear in the chosen track


def channel_tracks(tracks: list) -> list:
    """The film's audio `tracks` when they are a master's channels (each mono, at least MIN_CHANNEL_TRACKS, all in
    one language or none), else []. Mono tracks in different languages are a release's dubs, not channels: before
    2026-12-06 the one with the most speech was heard, whichever dub it was."""
    usable = [s for s in tracks if not not_the_films_sound(s)]
    mono = [s for s in usable if s.codec_context is not None and s.codec_context.channels == 1]
    languages = {((s.metadata or {}).get("language") or "und").lower() for s in mono}
    return mono if len(mono) >= MIN_CHANNEL_TRACKS and len(mono) == len(usable) and len(languages) == 1 else []


def sample_audio(container, tracks: list, duration_s: float, seconds: float = SAMPLE_S
                 ) -> dict:
    """{stream: [(film time of the first sample, 16 kHz mono wave), ...]}: `seconds` of each track at
    SAMPLE_AT of the film (all of a film shorter than the samples). Decodes only those stretches of those tracks."""
    import numpy as np

    if duration_s <= len(SAMPLE_AT) * seconds:
        starts, seconds = [0.0], max(seconds, duration_s + 1.0)
    else:
        starts = [p * duration_s for p in SAMPLE_AT]
    offset = film_start_s(container)
    out: dict = {s: [] for s in tracks}  # (by stream: a composition's sound sequences are each stream 0 of a file)
    for start in starts:
        container.seek(int((start + offset) * av.time_base), backward=True)
        waves: dict = {s: [] for s in tracks}
        first: dict = {}
        resample = {s: MonoResampler(16000) for s in tracks}
        done: set = set()
        for packet in demux(container, *tracks):
            i = packet.stream
            if i in done:
                continue
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError):
                continue
            for frame in frames:
                t = (frame.time or 0.0) - offset
                if t >= start + seconds:
                    done.add(i)
                elif t >= start:
                    first.setdefault(i, t)
                    waves[i] += resample[i].resample(frame)
            if len(done) == len(tracks):
                break
        for i, chunks in waves.items():
            if chunks:
                out[i].append((first[i], np.concatenate(chunks)))
    return out


def speech_heard(container, tracks: list, duration_s: float) -> dict:
    """{track: seconds of speech Silero VAD hears in its SAMPLE_S-long samples (sample_audio)}."""
    from model.asr import vad_speech_seconds
    samples = sample_audio(container, tracks, duration_s)
    return {s: sum(vad_speech_seconds(w) for _, w in got) for s, got in samples.items()}


def first_with_dialogue(container, tracks: list, duration_s: float):
    """The first of `tracks` (in order) with MIN_DIALOGUE_S of speech (speech_heard, one track at a time), or None:
    of an IMF title's sound sequences the first is the original language, but may be a music-and-effects mix
    without a voice; the one with the most speech could be any dub."""
    return next((t for t in tracks if speech_heard(container, [t], duration_s)[t] >= MIN_DIALOGUE_S), None)


def dialogue_track(container, tracks: list, duration_s: float):
    """The track of `tracks` with the most speech (speech_heard), or None when no track has MIN_DIALOGUE_S of it."""
    heard = speech_heard(container, tracks, duration_s)
    best = max(tracks, key=lambda s: heard[s])
    return best if heard[best] >= MIN_DIALOGUE_S else None


def start_timecode_s(container, fps: float) -> float:
    """The first frame's timecode (MOV / MP4 'timecode' on the video or tmcd track, MXF's in the file's own
    metadata: HH:MM:SS:FF, or HH:MM:SS;FF drop frame), in seconds as the label reads (01:00:00:00 is 3600 s at
    23.976 fps too; its frames over the label's rate, 24 there): the clock transforms.timecode.label_seconds puts
    SCC and TTML timecode lines on, and SRT lines on a master's timecode are written on. 0 without one."""
    tags = [container.metadata] + [s.metadata for s in container.streams]
    value = next((t["timecode"] for t in tags if t.get("timecode")), "")
    parts = value.replace(";", ":").replace(".", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return 0.0
    h, m, sec, frames = (int(p) for p in parts)
    return h * 3600 + m * 60 + sec + (frames / round(fps) if fps >= 1 else 0.0)


def film_start_s(container) -> float:
    """Presentation start of the container; film times are relative to it (MPEG-PS often starts at 0.5 s)."""
    return container.start_time / av.time_base if container.start_time not in (None, 0) else 0.0


def _stream_duration(s) -> float:
    if s.duration is not None and s.time_base is not None:
        return float(s.duration * s.time_base)
    return 0.0


def declared_end_s(stream) -> Optional[float]:
    """Where the container says a stream ends (its own clock, seconds): the stream's duration (mp4, MPEG-TS's
    estimate) or its DURATION tag (Matroska); None when it says nothing."""
    tb = stream.time_base
    start = float((stream.start_time or 0) * tb) if tb else 0.0
    if stream.duration and tb:
        return start + _stream_duration(stream)
    tag = (stream.metadata or {}).get("DURATION")
    try:
        h, m, sec = tag.split(":")
        return start + int(h) * 3600 + int(m) * 60 + float(sec)
    except (AttributeError, ValueError):
        return None


# Demuxers that read the file's last stretch for every stream's end (FFmpeg's estimate from timestamps: MPEG program
# and transport streams)
TAIL_TIMED = frozenset({"mpeg", "mpegts"})


def declared_ends(container, streams) -> dict:
    """{stream: declared_end_s, None where not declared}; a composition's (transforms.imf) from its CPL. In a
    format FFmpeg times from the file's last stretch, a stream none of whose packets are there, while another's
    are, ended before it: -inf (a broadcast recording whose picture stops while its sound goes on; before
    2026-12-05 such a stream was waited for)."""
    if isinstance(container, imf.CompositionContainer):
        return {s: container.declared_end(s) for s in streams}
    ends = {s: declared_end_s(s) for s in streams}
    if container.format.name in TAIL_TIMED and any(e is not None for e in ends.values()):
        return {s: -math.inf if e is None else e for s, e in ends.items()}
    return ends


def forced_stream(stream) -> bool:
    """Whether a subtitle stream is a forced track: its forced disposition, or a title that says so ("English
    (Forced)", as remuxers name one and leave the disposition unset; before 2026-12-06 read as the full dialogue)."""
    return bool(stream.disposition & av.stream.Disposition.forced
                or re.search(r"(?<!non-)(?<!non )(?<!not )\bforced\b", _title(stream), re.I))


def probe_container(container, path: str) -> FilmInfo:
    """What the film holds; `path` is the container's, for the programme tables of a multiplex."""
    v = main_video_stream(container)
    heard = programme_tracks(container, path, v, list(container.streams.audio))  # the picture's programme's
    a = main_audio_stream(container, heard)
    if v is None and a is None:
        raise NotAFilm("no video or audio stream")
    if a is None and (container.format.name == "image2" or container.format.name.endswith("_pipe")):
        raise NotAFilm(f"a still image ({container.format.name}), not a film")
    duration = container.duration / av.time_base if container.duration else 0.0
    if duration > 0 and set((container.format.name or "").split(",")) & {"matroska", "webm", "nut"}:
        # FFmpeg counts these formats' duration from 0, the film's time from its first packet (film_start_s; MP4's
        # and MPEG-TS's from there): a file whose clock starts late (cut from a longer recording) was that much
        # longer, and its end a MediaEndedEarly row, before 2026-12-06
        duration = max(duration - film_start_s(container), 0.0)
    if duration <= 0:
        duration = max([_stream_duration(s) for s in (v, a) if s is not None] or [0.0])
    fps, vfr = 0.0, False
    if v is not None:
        avg, base = v.average_rate, v.base_rate or v.guessed_rate
        fps = float(avg or base or 0.0)
        # ffmpeg's r_frame_rate is the lowest rate that represents every timestamp; a mismatch with the mean
        # rate means frame durations vary.
        vfr = bool(avg and base and abs(float(avg) - float(base)) > 0.01 * float(base))
    text_subs = [s for s in container.streams.subtitles if s.codec_context is not None
                 and s.codec_context.name in TEXT_SUBTITLE_CODECS and not commentary_subtitles(s)]
    subs = tuple(s.index for s in text_subs)
    captions = tuple(s.index for s in container.streams.subtitles
                     if s.codec_context is not None and s.codec_context.name in CAPTION_CODECS)
    picture_subs = [s for s in container.streams.subtitles if s.codec_context is not None
                    and s.codec_context.name not in TEXT_SUBTITLE_CODECS + CAPTION_CODECS
                    and not commentary_subtitles(s)]
    pictures = tuple(s.codec_context.name for s in picture_subs)
    read_pictures = tuple(s.index for s in picture_subs if s.codec_context.name in PICTURE_CODECS)
    forced = tuple(s.index for s in text_subs + picture_subs if forced_stream(s))
    sdh = tuple(s.index for s in text_subs + picture_subs if sdh_subtitles(s))
    default = tuple(s.index for s in text_subs + picture_subs if s.disposition & av.stream.Disposition.default)
    # subtitle streams FFmpeg has no decoder for here: in a transport stream, DVB teletext (transforms.teletext)
    teletext = tuple(s.index for s in container.streams.subtitles
                     if s.codec_context is None and "mpegts" in container.format.name)
    return FilmInfo(
        duration_s=float(duration),
        width=int(v.codec_context.width) if v is not None else 0,
        height=int(v.codec_context.height) if v is not None else 0,
        fps=fps,
        video_codec=v.codec_context.name if v is not None else None,
        audio_codec=a.codec_context.name if a is not None else None,
        has_video=v is not None,
        has_audio=a is not None,
        subtitle_streams=subs,
        forced_subtitle_streams=forced,
        sdh_subtitle_streams=sdh,
        default_subtitle_streams=default,
        variable_frame_rate=vfr,
        sample_aspect=float(v.sample_aspect_ratio or 1) if v is not None else 1.0,
        audio_stream=_audio_index(container, a, heard, float(duration)),
        start_timecode_s=start_timecode_s(container, fps),
        image_subtitle_codecs=pictures,
        picture_subtitle_streams=read_pictures,
        teletext_streams=teletext,
        caption_streams=captions,
        picture_area=_picture_area(container, v, float(duration)),
    )


# Codecs whose frames are too slow to sample at full size (JPEG 2000: 0.8 s a 1080p frame; a DCP's or IMF title's
# picture fills its container) and whose bars are not looked for
UNSAMPLED_CODECS = ("jpeg2000",)


def _picture_area(container, v, duration_s: float):
    """The bars around the film's picture (transforms.picture_area.film_area), None where there are none or they
    cannot be told (no picture, a frame that does not decode: the frames are then converted whole, as before)."""
    if v is None or v.codec_context.name in UNSAMPLED_CODECS or not (v.codec_context.width and duration_s > 0):
        return None
    from transforms.picture_area import film_area
    try:
        return film_area(container, v, duration_s, film_start_s(container))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if storage_failure(exc):  # the film is probed again by the next run
            raise
        log.debug("%s: bars not looked for: %s", getattr(container, "name", ""), exc)
        return None


def _audio_index(container, main, heard: list, duration_s: float):
    """The stream index of the film's sound where main_audio_stream(container) would not choose it (None where
    it would): `main`, the choice among the picture's programme's tracks (`heard`), or a master's dialogue
    channel track among them."""
    best, tracks = main, channel_tracks(heard) if main is not None else []
    sequences = isinstance(container, imf.CompositionContainer) and len(heard) > 1
    try:
        if sequences:  # an IMF title's sound sequences: the original language first, dubs, an M&E, a described track
            best = first_with_dialogue(container, heard, duration_s) or main
        else:
            best = (dialogue_track(container, tracks, duration_s) if tracks else None) or main
    except (av.error.FFmpegError, OSError, ValueError) as exc:  # unreadable samples: the usual choice stands
        if storage_failure(exc):  # unless the storage failed: the film is probed again by the next run
            raise
    usual = main_audio_stream(container)
    if isinstance(container, imf.CompositionContainer):  # (each of its streams is stream 0 of a track file)
        return container.streams.index(best) if best is not None and best is not usual else None
    return best.index if best is not None and best.index != usual.index else None


def probe_film(path: str) -> FilmInfo:
    with open_container(path) as container:
        return probe_container(container, path)


def package_of(film_path: str) -> Optional[str]:
    """The asset map that lists a film when it is a track file (MXF) of an IMF or DCP package scored on its own (one
    that no composition plays), else None; a composition itself (its CPL) is the package's title. The asset map may
    lie in a folder above the track file (a DCP volume's, one listing MXF/...: imf.asset_map_of); any other file a
    package lists is no film (imf.titles_of)."""
    if imf.is_composition(film_path) or not film_path.lower().endswith(imf.TRACK_FILE_EXTS):
        return None
    return imf.asset_map_of(film_path)


class ProbeFilm(beam.DoFn):
    """FilmRef -> (FilmRef, FilmInfo); a file PyAV cannot open becomes a fatal FilmError. With an output_dir, a film
    whose probing killed its worker MAX_STARTS times is given up (transforms.attempts)."""

    def __init__(self, output_dir: Optional[str] = None, config_hash: Optional[str] = None):
        self.output_dir, self.config_hash = output_dir, config_hash

    def process(self, ref: FilmRef) -> Iterable:
        earlier = attempts.record_start(self.output_dir, ref, self.config_hash, "probe")
        out = (beam.pvalue.TaggedOutput(ERRORS_TAG, attempts.gave_up(ref, "probe", earlier))
               if earlier >= attempts.MAX_STARTS else self._probe(ref))
        attempts.finished(self.output_dir, ref.film_id, "probe")  # before the next steps run on what it yields
        yield out

    @staticmethod
    def _probe(ref: FilmRef):
        try:
            if ref.size_bytes == 0:
                raise NotAFilm("file is empty (0 bytes)")
            info = dataclasses.replace(probe_film(ref.path), package=package_of(ref.path))
        except NotAFilm as exc:  # (an MP4 whose index was cut lists no stream)
            why = why_unreadable(ref) if ref.size_bytes else None
            err = FilmError.from_exception(ref, "probe", exc)
            return beam.pvalue.TaggedOutput(ERRORS_TAG, dataclasses.replace(err, message=f"{exc}: {why}") if why
                                            else err)
        except Exception as exc:  # noqa: BLE001 - any failure to open is this film's error
            if storage_failure(exc, ref.path) or file_gone(exc):  # retried by the next run: stage `read`
                return beam.pvalue.TaggedOutput(ERRORS_TAG, FilmError.from_exception(ref, "read", exc))
            err = FilmError.from_exception(ref, "probe", exc)
            if not (isinstance(exc, (av.error.InvalidDataError, av.error.EOFError))  # (EOF: inside its header)
                    or isinstance(exc, av.error.FFmpegError) and exc.errno in STORAGE_ERRNOS):  # (EIO, read back)
                return beam.pvalue.TaggedOutput(ERRORS_TAG, err)  # (its own words)
            why = why_unreadable(ref)
            return beam.pvalue.TaggedOutput(ERRORS_TAG, dataclasses.replace(err, message=(
                f"not a readable media file: {why} ({exc})" if why else
                f"not a readable media file (truncated, damaged, or not audio/video at all): {exc}")))
        return ref, info


def why_unreadable(ref: FilmRef) -> Optional[str]:
    """What is wrong with a file FFmpeg could not open or decode nothing of, where its bytes tell (text: text_start;
    an archive, compressed file or disc image: packed_kind;
    transforms.mp4_atoms: an MP4 or QuickTime file cut short, broken in the middle or damaged at its start; an IMF
    or DCP timed-text track file: no media of its own); None otherwise."""
    try:
        head, volume = _sniff(ref.path)
        text = text_start(ref.path, head)
        if text is not None:
            return f"a text file, not audio or video (it begins {text!r})"
        packed = packed_kind(head, volume)
        if packed is not None:
            return packed
        if imf.is_timed_text_track(ref.path):  # (scored alone: its package's CPL or asset map did not read)
            return ("a timed-text (subtitle) track file of an IMF or DCP package, without picture or sound: it is read "
                    "as its title's lines, through the title's CPL (a PackageTrackFile row says when none plays it)")
        return mp4_atoms.diagnosis(ref.path, ref.size_bytes)
    except Exception as exc:  # noqa: BLE001 - a diagnosis that fails leaves FFmpeg's own message
        log.debug("%s: no diagnosis: %s", ref.path, exc)
        return None
