"""IMF and DCP packages: a title's picture and sound in separate MXF track files, joined by a composition playlist.

An IMF package (SMPTE ST 2067, the studio master format) or a DCP (ST 429, cinema) keeps a title as track files:
the picture in one or more MXF files (one per reel in a DCP), each sound (a language, a soundfield) in others, the
subtitles in others, listed by an asset map (ASSETMAP.xml, or ASSETMAP in an Interop DCP; in the files' folder or
one above it, as a DCP volume's) and put in order by a composition playlist (CPL): segments or reels, each naming a
stretch (entry point, duration, in edit units) of a track file. The title is the composition: discovery turns a
package's track files and asset map into its CPLs (`titles_of`), a film whose path is the CPL's, and
`CompositionContainer` reads it as one container, the picture and its sound (of several sound sequences, the one
where speech is heard: the probe's choice) on one clock, each track file's stretch in its place.

A supplemental package plays track files of its original version (OV) too: they are found through the asset maps of
the packages in the folders beside it. The title's subtitles and captions (IMSC1 in IMF, a DCP's subtitle XML) are
read by `read_texts`. Not read: encrypted DCPs (without their keys), forced narratives.
"""
from __future__ import annotations

import dataclasses
import functools
import heapq
import math
import os
import posixpath
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from fractions import Fraction
from typing import Callable, Iterator, Optional

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.mxf_resources import ancillary_resources, resource_id

ASSET_MAPS = ("ASSETMAP.xml", "ASSETMAP")  # IMF and SMPTE DCP; Interop DCP
ASSET_MAP_NAMES = tuple(n.lower() for n in ASSET_MAPS)  # matched in any case (a copy through a Windows tool)
FOLDER_LISTING_S = 300  # how long a folder's asset maps, listed on an object store, are taken as they were
TRACK_FILE_EXTS = (".mxf",)
PICTURE = ("MainImageSequence", "MainPicture", "MainStereoscopicPicture")  # IMF sequences, DCP reel assets
SOUND = ("MainAudioSequence", "MainSound")
# the dialogue as text: IMF subtitles and captions (IMSC1 TTML in MXF), a DCP's subtitles (SMPTE: XML in MXF;
# Interop: an XML file); forced narratives (only where the film leaves its language) are not the dialogue
TEXTS = ("SubtitlesSequence", "HearingImpairedCaptionsSequence", "ClosedCaptionsSequence", "MainSubtitle",
         "MainClosedCaption")
MAX_TEXT_TRACK_BYTES = 256 << 20  # a timed-text track file: its text, fonts and subtitle pictures
MAX_XML_BYTES = 16 << 20  # an asset map or CPL is kilobytes; a larger .xml is not one
CUT_SHORT_S = 0.1  # a track file whose packets end this much (and two edit units) before its stretch: the rest is lost


class CompositionError(ValueError):
    """The package or its CPL cannot be read as a title (a track file missing, an encrypted DCP, no picture or
    sound): the film fails at probe with this message."""


@dataclasses.dataclass(frozen=True)
class Resource:
    """A stretch of one track file: `duration` edit units from `entry`, played `repeat` times; or a gap (no path):
    a stretch of the composition in which the sequence plays nothing (a DCP reel without MainSound), `note` naming
    where ("reel 1")."""
    path: str
    entry: int
    duration: int
    edit_rate: Fraction
    repeat: int = 1
    note: str = ""

    @property
    def seconds(self) -> float:
        return float(self.duration / self.edit_rate) * self.repeat

    @property
    def length(self) -> Fraction:
        """Its seconds, exactly."""
        return self.duration * self.repeat / self.edit_rate

    @property
    def is_gap(self) -> bool:
        return not self.path

    @staticmethod
    def gap(seconds: Fraction, note: str) -> "Resource":
        """A gap of `seconds` in a sequence (where: `note`)."""
        seconds = Fraction(seconds)
        return Resource(path="", entry=0, duration=seconds.numerator, edit_rate=Fraction(seconds.denominator),
                        note=note)


@dataclasses.dataclass(frozen=True)
class Composition:
    """What a CPL says of its title: the picture's resources and the main sound's, in play order, and each text
    sequence's (subtitles, captions) with the composition time each resource starts at."""
    path: str
    title: str
    picture: tuple[Resource, ...]
    sounds: tuple[tuple[Resource, ...], ...]  # each sound sequence (IMF: a language or soundfield), CPL order
    texts: tuple[tuple[str, tuple[tuple[float, Resource], ...]], ...] = ()  # (sequence name, ((start_s, res), ...))
    encrypted: bool = False
    missing: tuple[str, ...] = ()  # track file ids the asset map does not list

    @property
    def sound(self) -> tuple[Resource, ...]:
        """The first sound sequence's resources."""
        return self.sounds[0] if self.sounds else ()

    def check(self) -> None:
        """Raise CompositionError when the title cannot be read: it is encrypted or a track file is missing."""
        name = self.path.rsplit("/", 1)[-1]
        if self.encrypted:
            raise CompositionError(f"{name} is encrypted (its track files need the KDM's keys): it cannot be decoded")
        if self.missing:
            raise CompositionError(f"{name} plays {len(self.missing)} track file(s) that neither its package's asset "
                                   f"map nor those of the packages beside it list ({self.missing[0]}...; a "
                                   "supplemental package whose original version is elsewhere?): put the original "
                                   "version's package in a folder beside it")
        if not self.picture and not self.sound:
            raise CompositionError(f"{name} plays no picture or sound track file")

    @property
    def track_files(self) -> list[str]:
        """Every file the title plays: its fingerprint's."""
        texts = [r.path for _, resources in self.texts for _, r in resources]
        played = {r.path for r in self.picture} | {r.path for seq in self.sounds for r in seq} | set(texts)
        return sorted(played - {""})  # (a gap plays no file)

    @property
    def duration_s(self) -> float:
        return max([sum(r.seconds for r in self.picture)] + [sum(r.seconds for r in seq) for seq in self.sounds])


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el, name: str):
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el, name: str, default: Optional[str] = None) -> Optional[str]:
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text else default


def _folder(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else "."


def _read_xml(path: str):
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        data = f.read(MAX_XML_BYTES + 1)
    if len(data) > MAX_XML_BYTES:
        raise CompositionError(f"{path} is over {MAX_XML_BYTES >> 20} MB: not a package's XML")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise CompositionError(f"{path.rsplit('/', 1)[-1]} is not readable XML: {exc}") from None


def is_composition(path: str) -> bool:
    """Whether a film's path names a CPL (a film found through its package: titles_of). No other film is .xml."""
    return path.lower().endswith(".xml")


def is_asset_map(path: str) -> bool:
    """Whether a file is a package's asset map, by its name in any case (a copy through a Windows or FAT tool writes
    ASSETMAP.XML or assetmap.xml; before 2026-12-06 such a package's title was lost without a word)."""
    return path.rsplit("/", 1)[-1].lower() in ASSET_MAP_NAMES


def asset_map_of(path: str) -> Optional[str]:
    """The asset map that lists `path` (a CPL, a track file), in its folder or a folder above it, or None (not in a
    package)."""
    found = _listing_asset_map(path)
    return found[0] if found else None


def _listing_asset_map(path: str) -> Optional[tuple[str, float, int]]:
    """(the asset map that lists `path`, its modification time, its size): the nearest one, in the folder of `path`
    or a folder above it, that lists it. A DCP volume's one ASSETMAP at its root lists a package in a subfolder, and
    an asset map may list its track files in MXF/ (ST 429-9 paths with folders): before 2026-12-06 only the asset
    map in the file's own folder was looked at, so such a CPL failed and its track files were scored one by one.
    Each folder is listed once (_asset_maps_in) and each asset map read once (_asset_paths)."""
    folder = _folder(path)
    while True:
        for stamped in _asset_maps_in(folder):
            try:
                if path in _asset_paths(*stamped):
                    return stamped
            except (CompositionError, OSError):
                continue  # an unreadable asset map lists nothing we can read
        parent = _parent(folder)
        if parent is None:
            return None
        folder = parent


def _parent(folder: str) -> Optional[str]:
    """The folder above `folder`, or None at a filesystem's or a bucket's root."""
    scheme, sep, rest = folder.partition("://") if "://" in folder else ("", "", folder)
    rest = rest.rstrip("/")
    if "/" not in rest:  # (gs://bucket, a relative folder's top)
        return None
    return scheme + sep + (rest.rsplit("/", 1)[0] or "/")


def _asset_maps_in(folder: str) -> tuple[tuple[str, float, int], ...]:
    """(path, modification time, size) of the asset maps in `folder` (any case of their names). A local folder's
    names are listed once until its entries change (its mtime), each asset map's stamp looked at each time (one
    rewritten in place is read again); another filesystem's are taken as listed for FOLDER_LISTING_S (asset maps
    are few; an archive's folders are listed once by each worker, not once a file)."""
    from transforms.discover import local_path  # (discover imports this module)
    local = local_path(folder)
    if local is None:
        return _remote_asset_maps(folder, int(time.time() // FOLDER_LISTING_S))
    try:
        names = _local_asset_map_names(local or ".", os.stat(local or ".").st_mtime_ns)
    except OSError:  # a folder that cannot be listed holds no package we can read
        return ()
    found = []
    for name in names:
        try:
            st = os.stat(os.path.join(local or ".", name))
        except OSError:
            continue
        found.append((f"{folder}/{name}", float(st.st_mtime), st.st_size))
    return tuple(found)


@functools.lru_cache(maxsize=4096)
def _local_asset_map_names(local: str, stamp: int) -> tuple[str, ...]:
    """The names of the asset maps in a local folder as it is at `stamp` (its modification time)."""
    with os.scandir(local) as entries:
        return tuple(sorted(e.name for e in entries if e.name.lower() in ASSET_MAP_NAMES and e.is_file()))


@functools.lru_cache(maxsize=4096)
def _remote_asset_maps(folder: str, period: int) -> tuple[tuple[str, float, int], ...]:
    """_asset_maps_in for a folder of an object store, listed in `period`: a prefix listing for each way the name is
    usually written (ASSETMAP*, assetmap*, Assetmap*), so a folder above a large archive costs three short
    requests, not a listing of everything under it."""
    from transforms.discover import literal_glob
    found = {}
    for stem in ("ASSETMAP", "assetmap", "Assetmap"):
        try:
            listed = FileSystems.match([f"{literal_glob(folder)}/{stem}*"])[0].metadata_list
        except Exception:  # noqa: BLE001 - a folder that cannot be listed holds no package we can read
            continue
        for m in listed:
            if is_asset_map(m.path) and _folder(m.path) == folder:
                found[m.path] = (m.path, float(m.last_updated_in_seconds or 0.0), m.size_in_bytes)
    return tuple(sorted(found.values()))


def _stamped(path: str) -> Optional[tuple[str, float, int]]:
    """(path, modification time, size) of one file, or None when it is not there."""
    from transforms.discover import literal_glob
    try:
        found = FileSystems.match([literal_glob(path)])[0].metadata_list
    except Exception:  # noqa: BLE001 - not there, or not listable: no package we can read
        return None
    return (found[0].path, float(found[0].last_updated_in_seconds or 0.0), found[0].size_in_bytes) if found else None


@functools.lru_cache(maxsize=1024)
def _asset_paths(asset_map: str, mtime: float, size: int) -> frozenset[str]:
    """The paths an asset map lists, read once per version of it (every file of an archive asks)."""
    return frozenset(read_asset_map(asset_map).values())


def read_asset_map(asset_map: str) -> dict[str, str]:
    """urn:uuid:... -> the asset's path (relative paths resolved against the asset map's folder)."""
    root = _read_xml(asset_map)
    folder, assets = _folder(asset_map), {}
    for asset in root.iter():
        if _local(asset.tag) != "Asset":
            continue
        uid, chunks = _text(asset, "Id"), _child(asset, "ChunkList")
        chunk = _child(chunks, "Chunk") if chunks is not None else None
        rel = _text(chunk, "Path") if chunk is not None else None
        if uid and rel:
            rel = rel.removeprefix("file://").lstrip("/") if rel.startswith("file://") else rel
            rel = posixpath.normpath(urllib.parse.unquote(rel.replace("\\", "/")))  # (%20, a Windows tool's \\)
            assets[uid.lower()] = f"{folder}/{rel}"
    return assets


def _rate(text: Optional[str], default: Optional[Fraction]) -> Optional[Fraction]:
    if not text:
        return default
    parts = text.split()
    try:
        return Fraction(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1)
    except (ValueError, ZeroDivisionError):
        return default


def _resource(el, assets: dict, default_rate: Optional[Fraction], cpl: str, missing: list) -> Optional[Resource]:
    """A CPL entry (an IMF TrackFileResource, a DCP reel's asset) as a Resource; None for a resource that is no track
    file (an IMF marker) or one the asset map does not list (its id added to `missing`)."""
    uid = (_text(el, "TrackFileId") or _text(el, "Id") or "").lower()
    rate = _rate(_text(el, "EditRate"), default_rate)
    if not uid or rate is None or rate <= 0:
        return None
    path = assets.get(uid)
    if path is None:
        missing.append(uid)
        return None
    try:
        intrinsic = int(_text(el, "IntrinsicDuration", "0"))
        entry = int(_text(el, "EntryPoint", "0"))
        duration = int(_text(el, "SourceDuration") or _text(el, "Duration") or intrinsic - entry)
        repeat = int(_text(el, "RepeatCount", "1"))
    except ValueError as exc:
        raise CompositionError(f"{cpl.rsplit('/', 1)[-1]}: a resource's durations are not numbers ({exc})") from None
    return Resource(path=path, entry=max(entry, 0), duration=max(duration, 0), edit_rate=rate, repeat=max(repeat, 1))


def read_composition(cpl: str, asset_map: Optional[str] = None) -> Composition:
    """The CPL at `cpl` (IMF ST 2067-3 or DCP ST 429-7 / Interop), its track files found through the asset map
    that lists it (in its folder or one above: asset_map_of). The picture: every image sequence's resources in
    segment order; the sound: the first sound sequence's (IMF: the first MainAudioSequence's TrackId, followed
    through the segments). An encrypted or incomplete title is read too (its track files still belong to it);
    Composition.check says what stops it."""
    asset_map = asset_map or asset_map_of(cpl)
    if asset_map is None:
        raise CompositionError(f"{cpl.rsplit('/', 1)[-1]}: no asset map (ASSETMAP) in its folder or a folder above it "
                               "lists it, so its track files cannot be found")
    assets, root = read_asset_map(asset_map), _read_xml(cpl)
    comp = _composition(cpl, root, assets)
    if comp.missing:  # a supplemental package: the rest lies in the original version's package beside it
        comp = _composition(cpl, root, {**neighbour_assets(asset_map), **assets})
    return comp


def neighbour_assets(asset_map: str) -> dict[str, str]:
    """The assets of the packages in the folders beside this package's (an IMF supplemental package plays track
    files of its original version, OV, delivered beside it: Title_OV/, Title_SUPP_FR/)."""
    found: dict[str, str] = {}
    for path in _neighbour_asset_maps(_folder(_folder(asset_map))):
        if path != asset_map:
            try:
                found.update(read_asset_map(path))
            except CompositionError:
                continue
    return found


def _neighbour_asset_maps(parent: str) -> list[str]:
    """The asset maps (any case of their names) in the folders just below `parent`."""
    from transforms.discover import literal_glob, local_path
    local = local_path(parent)
    if local is not None:
        try:
            with os.scandir(local or ".") as entries:
                folders = sorted(f"{parent}/{e.name}" for e in entries if e.is_dir())
        except OSError:
            return []
        return [path for folder in folders for path, _, _ in _asset_maps_in(folder)]
    found = set()
    for stem in ("ASSETMAP", "assetmap", "Assetmap"):
        found.update(m.path for m in FileSystems.match([f"{literal_glob(parent)}/*/{stem}*"])[0].metadata_list
                     if is_asset_map(m.path) and _folder(_folder(m.path)) == parent)
    return sorted(found)


def _composition(cpl: str, root, assets: dict[str, str]) -> Composition:
    """The Composition the CPL at `cpl` (parsed: `root`) plays, its track files found in `assets`. Each sequence
    plays each reel (segment) from the reel's start: a reel that plays nothing of it, or less than the reel lasts,
    is a gap there (Resource.gap; before 2026-12-06 a DCP reel without MainSound moved every later reel's sound a
    reel early, and the last reel was silent)."""
    if _local(root.tag) != "CompositionPlaylist":
        raise CompositionError(f"{cpl.rsplit('/', 1)[-1]} is not a composition playlist")
    title = _text(root, "ContentTitle") or _text(root, "ContentTitleText") or cpl.rsplit("/", 1)[-1]
    rate = _rate(_text(root, "EditRate"), None)
    reels, texts, missing = [], {}, []
    encrypted = any(_local(el.tag) == "KeyId" for el in root.iter())
    t = Fraction(0)  # where the segment (IMF) or reel (DCP) starts in the composition
    for n, segment in enumerate([el for el in root.iter() if _local(el.tag) in ("Segment", "Reel")], 1):
        played: dict[object, list[Resource]] = {}  # PICTURE_KEY or ("sound", track id) -> its resources here
        for el in segment.iter():
            name = _local(el.tag)
            if name not in PICTURE + SOUND + TEXTS:
                continue
            track = (_text(el, "TrackId") or "").lower()  # (IMF: a virtual track, the same in every segment)
            entries = [r for r in el.iter() if _local(r.tag) == "Resource"] if name.endswith("Sequence") else [el]
            resources = [r for r in (_resource(e, assets, rate, cpl, missing) for e in entries) if r and r.duration]
            if name in PICTURE + SOUND:
                played.setdefault(PICTURE_KEY if name in PICTURE else ("sound", track), []).extend(resources)
            else:
                starts = float(t) + np.cumsum([0.0] + [r.seconds for r in resources])
                texts.setdefault(f"{name}{':' + track if track else ''}", []).extend(zip(starts.tolist(), resources))
        length = _length(played.get(PICTURE_KEY, ())) or max(map(_length, played.values()), default=Fraction(0))
        reels.append((f"{'reel' if _local(segment.tag) == 'Reel' else 'segment'} {n}", length, played))
        t += length
    sequences = _in_place(reels)
    return Composition(path=cpl, title=title, picture=tuple(sequences.pop(PICTURE_KEY, ())),
                       sounds=tuple(tuple(v) for v in sequences.values()),
                       texts=tuple((k, tuple(v)) for k, v in texts.items()), encrypted=encrypted,
                       missing=tuple(missing))


GAP_MIN_S = Fraction(1, 1000)  # a sequence this much shorter than its reel has a gap there (less: rounding)


def _length(resources) -> Fraction:
    return sum((r.length for r in resources), Fraction(0))


def _in_place(reels: list[tuple[str, Fraction, dict]]) -> dict[object, list[Resource]]:
    """Each sequence's resources through the reels ((name, length, {sequence: resources})), CPL order, with a gap
    where a reel plays less of it than the reel lasts (none of it: the whole reel), so every reel of it starts where
    the reel does. A sequence with no track file at all is left out."""
    keys = list(dict.fromkeys(k for _, _, played in reels for k in played))
    sequences = {}
    for key in keys:
        seq = []
        for name, length, played in reels:
            resources = played.get(key, [])
            seq += resources
            short = length - _length(resources)
            if short > GAP_MIN_S:
                seq.append(Resource.gap(short, name))
        if any(not r.is_gap for r in seq):
            sequences[key] = seq
    return sequences


def package_titles(asset_map: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """((cpl path, its track files), ...) for each CPL the asset map lists (an encrypted or incomplete one too: it
    fails at probe, once, with its reason)."""
    found = _stamped(asset_map)
    return _package_titles(*found) if found else ()


@functools.lru_cache(maxsize=256)
def _package_titles(asset_map: str, mtime: float, size: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """package_titles, read once per version of the asset map (each of a package's track files asks)."""
    titles, assets = [], read_asset_map(asset_map)
    for path in sorted(assets.values()):
        if not path.lower().endswith(".xml") or not FileSystems.exists(path):
            continue
        try:
            root = _read_xml(path)
        except CompositionError:  # unreadable: a title that fails at probe with the reason, if named as a CPL is
            if "cpl" in path.rsplit("/", 1)[-1].lower():
                titles.append((path, ()))
            continue
        if _local(root.tag) != "CompositionPlaylist":
            continue
        try:
            titles.append((path, tuple(_composition(path, root, assets).track_files)))
        except CompositionError:
            titles.append((path, ()))  # (probe says what is wrong with it)
    return tuple(titles)


def titles_of(path: str) -> Optional[list[str]]:
    """For a package's asset map or track file, the CPLs (the titles) it belongs to; None for any other file (a
    film of its own). A file is in a package when an asset map in its folder or a folder above lists it
    (_listing_asset_map). An MXF in a package that no CPL plays is scored as it is ([path]). Only MXF files are
    looked up: the other files a package lists (an Interop DCP's font, before 2026-12-06 a failed film, 'not a
    readable media file'; subtitle assets) are no films by their suffix."""
    if is_asset_map(path):
        try:
            return [cpl for cpl, _ in package_titles(path)]
        except (CompositionError, OSError):
            return []
    if not path.lower().endswith(TRACK_FILE_EXTS):
        # (no asset map search for every mp4 of a large archive: the other files a package lists, its fonts and
        # subtitle assets, are not films by their suffix, discover.NOT_FILMS)
        return None
    found = _listing_asset_map(path)
    if found is None:
        return None
    try:
        titles = [cpl for cpl, files in _package_titles(*found) if path in files]
    except (CompositionError, OSError):
        return None
    return titles or [path]


def film_paths(paths_and_sizes) -> Iterator[tuple[str, int]]:
    """(path, size) of matched files -> (path, size) of the films: a package's files become its CPLs (the CPL's own
    size, which the checks for a file being replaced compare); other files stay. Looks for the asset maps in each
    file's folder and the folders above it (each folder listed once a worker, a few short requests on an object
    store): discovery runs it after the films are spread over the workers."""
    for path, size in paths_and_sizes:
        titles = titles_of(path)
        if titles is None:
            yield path, size
            continue
        for cpl in titles:
            yield cpl, (size if cpl == path else _size(cpl))


def listed_film_paths(paths_and_sizes) -> list[tuple[str, int]]:
    """film_paths from a listing alone, as the launcher counts the films it expects: a listed asset map gives its
    package's CPLs, and the track files they play (and the other files it lists that are not MXF) are not films;
    an MXF whose asset map is not in the listing stays a file (no request for each file of a large MXF archive;
    discovery in the pipeline finds its package)."""
    listed, not_films, titles = list(paths_and_sizes), set(), []
    for path, _ in listed:
        if is_asset_map(path):
            try:
                found, stamp = package_titles(path), _stamped(path)
                members = _asset_paths(*stamp) if stamp else frozenset()
            except (CompositionError, OSError):
                continue
            not_films.update(f for _, files in found for f in files)
            not_films.update(f for f in members if not f.lower().endswith(TRACK_FILE_EXTS))
            titles += [(cpl, _size(cpl)) for cpl, _ in found]
    return [(p, s) for p, s in listed if not is_asset_map(p) and p not in not_films] + titles


def _size(path: str) -> int:
    from transforms.discover import size_now  # (discover imports this module)
    return size_now(path) or 0


def _xml_document(data: bytes) -> Optional[str]:
    """The XML document a timed-text track file wraps (IMSC1 TTML in IMF, a DCP's subtitle XML: one KLV item of
    the MXF holds it whole), or the file itself when it is XML (an Interop DCP's subtitles), from its root element
    (without the declaration: it is decoded here)."""
    start = data.find(b"<?xml")
    root = _ROOT.search(data, data.find(b"?>", start) + 2 if start >= 0 else 0)
    if root is None:
        return None
    end = data.find(b"</" + root.group(1) + b">", root.end())
    if end < 0:
        return None
    return data[root.start():end + len(root.group(1)) + 3].decode("utf-8", "replace")


_ROOT = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?(?:tt|SubtitleReel|DCSubtitle))[\s>]")
TIMED_TEXT_HEAD = 4 << 20  # where a timed-text track file's document is looked for: it is the file's first essence


def is_timed_text_track(path: str) -> bool:
    """Whether an MXF holds a subtitle document (IMSC1, a DCP's subtitle XML) near its start: a package's timed-text
    track file, which has no picture or sound of its own (FFmpeg cannot open it as media)."""
    if not path.lower().endswith(TRACK_FILE_EXTS):
        return False
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return _xml_document(f.read(TIMED_TEXT_HEAD)) is not None


def _dcp_time(text: str, rate: float) -> float:
    """A DCP subtitle time: HH:MM:SS:EE (SMPTE: edit units at the reel's TimeCodeRate; Interop: ticks of 4 ms) or
    HH:MM:SS.sss."""
    parts = text.strip().split(":")
    if len(parts) == 3:
        h, m, sec = parts
        return int(h) * 3600 + int(m) * 60 + float(sec)
    h, m, sec, units = (int(p) for p in parts)
    return h * 3600 + m * 60 + sec + units / rate


def dcp_subtitle_events(root, image_text: Optional[Callable[[str], str]] = None
                        ) -> tuple[list[tuple[float, float, str]], Optional[str], list[str]]:
    """A DCP's subtitle document (SMPTE ST 428-7 SubtitleReel, Interop DCSubtitle) -> ([(start_s, end_s, text)],
    its language, warnings), times from the document's start. image_text: the text of a subtitle given as a picture
    (an `<Image>` names a PNG: Interop, a file beside the document; SMPTE, by urn:uuid, one the track file carries),
    else pictures are left out."""
    smpte = _local(root.tag) == "SubtitleReel"
    rate = float(_text(root, "TimeCodeRate") or 24) if smpte else 250.0
    start = _dcp_time(_text(root, "StartTime"), rate) if smpte and _text(root, "StartTime") else 0.0
    language, events, warnings = _text(root, "Language"), [], []
    for sub in (el for el in root.iter() if _local(el.tag) == "Subtitle"):
        words = " ".join(" ".join(t.itertext()).strip() for t in sub.iter() if _local(t.tag) == "Text")
        if image_text is not None:
            words = " ".join([words] + [image_text((im.text or "").strip()) for im in sub.iter()
                                        if _local(im.tag) == "Image" and (im.text or "").strip()])
        try:
            begin, end = (_dcp_time(sub.get(k, ""), rate) - start for k in ("TimeIn", "TimeOut"))
        except ValueError:
            warnings.append(f"subtitle {sub.get('SpotNumber', len(events) + 1)}: skipped, unreadable times "
                            f"{sub.get('TimeIn')!r} -> {sub.get('TimeOut')!r}")
            continue
        events.append((begin, end, " ".join(words.split())))
    return events, language, warnings


def _pictures(path: str, data: bytes):
    """The subtitle pictures a track file's document may name, read by OCR (transforms.image_subtitles): in an MXF
    track file the PNGs it carries, by UUID (transforms.mxf_resources, read once a picture is asked for); in an
    Interop DCP's XML file, PNG files beside it."""
    from transforms.image_subtitles import SubtitlePictures
    if not path.lower().endswith(".mxf"):
        return SubtitlePictures.beside(path)

    @functools.cache
    def carried() -> dict[str, bytes]:  # parsed once a picture is asked for
        return ancillary_resources(data)

    def inside(ref: str) -> bytes:
        found = carried().get(resource_id(ref) or "")
        if found is None:
            cut = f"; read up to {MAX_TEXT_TRACK_BYTES >> 20} MiB" if len(data) >= MAX_TEXT_TRACK_BYTES else ""
            raise LookupError(f"not among the {len(carried())} resources the track file carries{cut}")
        return found
    return SubtitlePictures(inside)


def read_texts(comp: Composition) -> Iterator[tuple[str, list[tuple[float, float, str]], Optional[str], list[str]]]:
    """Each text sequence of the composition (CPL order): (its name, its lines on the composition's clock, its
    language tag, warnings). A track file's document is timed from the file's start: each resource keeps the
    lines of its stretch (entry point, duration), moved to where the resource plays."""
    from transforms.ttml import is_ttml, parse_ttml
    for name, resources in comp.texts:
        lines, language, warnings = [], None, []
        for start, res in resources:
            where = res.path.rsplit("/", 1)[-1]
            try:
                with FileSystems.open(res.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    data = f.read(MAX_TEXT_TRACK_BYTES)
                document = _xml_document(data)
                if document is None:
                    warnings.append(f"{where}: no subtitle document found in it")
                    continue
                pictures = _pictures(res.path, data)
                if is_ttml(document):
                    events, lang, w = parse_ttml(document, pictures)
                else:
                    events, lang, w = dcp_subtitle_events(ET.fromstring(document), pictures)
                w = w + pictures.warnings()
            except (ValueError, ET.ParseError) as exc:
                warnings.append(f"{where}: {type(exc).__name__}: {exc}")
                continue
            language = language or lang
            warnings += [f"{where}: {m}" for m in w]
            first, step = float(res.entry / res.edit_rate), float(res.duration / res.edit_rate)
            for i in range(res.repeat):
                at = start + i * step
                lines += [(at + max(b, first) - first, at + min(e, first + step) - first, text)
                          for b, e, text in events if e > first and b < first + step]
        yield name, lines, language, warnings


class _Streams(list):
    """container.streams as probe and decode use it: .video, .audio, .subtitles; the picture, then each sound, by
    place."""

    def __init__(self, video, audio: list):
        super().__init__(([video] if video is not None else []) + audio)
        self.video = [video] if video is not None else []
        self.audio = list(audio)
        self.subtitles = []


def _essence(stream) -> str:
    """What a decoder must be set up for: the codec, and a sound's rate and channels."""
    cc = stream.codec_context
    return (f"{cc.name} {cc.sample_rate} Hz {cc.channels} ch" if stream.type == "audio" else cc.name)


@dataclasses.dataclass(frozen=True)
class LostStretch:
    """A stretch of one of the title's streams that is missing: its track file (or the rest of it) could not be
    read (damaged). The title is read without it; decode_film writes a TrackFileUnreadable row and marks its
    clips damaged."""
    stream: object  # the CompositionContainer stream it belongs to (None: a sequence none of whose files read)
    kind: str  # "video" | "audio"
    start_s: float
    end_s: float
    track_file: str
    reason: str


class CompositionContainer:
    """A composition read as one container (what open_container gives for a CPL): the stream of its first picture
    track file and, for each sound sequence, of its first sound track file; their decoders decode every later track
    file's packets too (a DCP's reels, IMF segments), each packet moved onto the composition's clock; demux merges
    the streams in time order. container.streams lists the picture, then a stream per sound sequence: the probe
    picks the one with the dialogue (FilmInfo.audio_stream: its place in that list).

    Each sequence opens its own track files (_container's key): two sound sequences that start with the same track
    file (a music-only opening a dub reuses) have a stream, a decoder and resources each (before 2026-12-06 they
    shared one stream, and the first sequence played the second's later reels).

    A track file that cannot be read (damaged: FFmpeg cannot open it, finds no stream of its kind in it, or fails
    part way through) costs its own stretch only, listed in `lost` (LostStretch) as it is found: before 2026-12-06 one
    damaged reel failed the whole title. A reel or segment that plays nothing of a sequence (a gap: a DCP reel
    without MainSound) is listed there too, and a sound's gap is heard as silence. `storage_failure(exc, path)` tells
    a storage's failure from the file's own (the former is raised: the next run reads the title again). Only when no
    track file reads is the title lost."""

    def __init__(self, comp: Composition, opener: Callable,
                 storage_failure: Callable[[BaseException, str], bool] = lambda exc, path: False):
        self.comp, self._open, self._files = comp, opener, {}
        self._storage_failure = storage_failure
        self._sequences: dict[int, tuple[object, tuple[Resource, ...]]] = {}  # id(stream) -> (its key, resources)
        self.unreadable: dict[str, str] = {}  # track file -> why it could not be opened
        self.lost: list[LostStretch] = []
        sounds = [seq for seq in comp.sounds if seq]
        try:
            video = self._first_stream("video", comp.picture, PICTURE_KEY) if comp.picture else None
            audio = [self._first_stream("audio", seq, n) for n, seq in enumerate(sounds)]
            readable = [(key, r.path) for key, seq in [(PICTURE_KEY, comp.picture)] + list(enumerate(sounds))
                        for r in seq if not r.is_gap and r.path not in self.unreadable]
            if not readable:  # nothing of the title reads: its first track file's error is the title's
                key, first_path = next((k, r.path) for k, seq in [(PICTURE_KEY, comp.picture)] + list(enumerate(sounds))
                                       for r in seq if not r.is_gap)
                self._container(first_path, key)
                raise CompositionError(f"no track file of {comp.path.rsplit('/', 1)[-1]} can be read (the first, "
                                       f"{first_path.rsplit('/', 1)[-1]}: {self.unreadable[first_path]})")
        except BaseException:
            self.close()
            raise
        self.streams = _Streams(video, [s for s in audio if s is not None])
        for stream, kind, resources in [(video, "video", comp.picture)] + [(s, "audio", q) for s, q in
                                                                        zip(audio, sounds)]:
            self.lost += self._unread(stream, kind, resources)
        first = self._container(readable[0][1], readable[0][0])
        self.format, self.metadata = first.format, first.metadata
        self.start_time, self.duration = 0, int(comp.duration_s * 1_000_000)
        self._seek_s = 0.0

    def _unread(self, stream, kind: str, resources: tuple[Resource, ...]) -> list[LostStretch]:
        """The stretches of a sequence whose track files could not be opened, and its gaps (a reel without it)."""
        out, t0 = [], 0.0
        what = "picture" if kind == "video" else "sound"
        for res in resources:
            if res.is_gap:
                out.append(LostStretch(stream, kind, t0, t0 + res.seconds, f"the {what} of {res.note}",
                                       f"the CPL plays no {what} track file in {res.note}: "
                                       + ("silence there" if kind == "audio" else "no picture there")))
            elif res.path in self.unreadable:
                out.append(LostStretch(stream, kind, t0, t0 + res.seconds, res.path.rsplit("/", 1)[-1],
                                       self.unreadable[res.path]))
            t0 += res.seconds
        return out

    def _opens(self, path: str, kind: str, key):
        """The track file's streams of `kind` (in the container opened for the sequence `key`), or None when it
        cannot be read (why: in `unreadable`)."""
        if path in self.unreadable:
            return None
        try:
            streams = getattr(self._container(path, key).streams, kind)
        except Exception as exc:
            if self._storage_failure(exc, path):
                raise
            self.unreadable[path] = f"{type(exc).__name__}: {exc}"
            return None
        if not streams:
            self.unreadable[path] = f"no {kind} stream in it (a damaged header?)"
            return None
        return streams

    def _first_stream(self, kind: str, resources: tuple[Resource, ...], key):
        """The first readable track file's stream of a sequence (`key`: the picture, or a sound sequence's place),
        whose decoder decodes the whole sequence (None when none reads): every track file of it must hold the same
        kind of essence (CompositionError names the first that does not)."""
        first = None
        for path in dict.fromkeys(r.path for r in resources if not r.is_gap):
            streams = self._opens(path, kind, key)
            if streams is None:
                continue
            if first is None:
                first = streams[0]
            elif _essence(streams[0]) != _essence(first):
                raise CompositionError(
                    f"track file {path.rsplit('/', 1)[-1]} holds {_essence(streams[0])}, where the sequence's first "
                    f"holds {_essence(first)}: the reels of one sequence must match to be read as one")
        if first is not None:
            self._sequences[id(first)] = (key, resources)
        return first

    def _container(self, path: str, key):
        """The track file opened for the sequence `key` (each sequence its own: a file two sequences play is opened
        twice, so neither's reads, seeks or decoder disturb the other's)."""
        if (key, path) not in self._files:
            self._files[(key, path)] = self._open(path)
        return self._files[(key, path)]

    def declared_end(self, stream) -> float:
        """Where the composition says a stream ends: the sum of its resources."""
        return sum(r.seconds for r in self._resources(stream))

    def _resources(self, stream) -> tuple[Resource, ...]:
        return self._sequences[id(stream)][1]

    def seek(self, offset: int, backward: bool = True, any_frame: bool = False, stream=None) -> None:
        """Seek to `offset` microseconds of the composition (the next demux starts there, each track file at the
        keyframe before its point)."""
        self._seek_s = max(0.0, offset / 1_000_000)

    def demux(self, *streams) -> Iterator:
        sources = [self._packets(s, self._seek_s) for s in (streams or list(self.streams))]
        merged = heapq.merge(*sources, key=lambda tp: tp[0])
        return (packet for _, packet in merged)

    def _packets(self, stream, from_s: float) -> Iterator:
        """(composition time, packet) of one stream's resources in play order, from `from_s` on; the packets of
        every track file are given to `stream` (its decoder) at their composition times; a sound's gap is given as
        silence (PCM); one empty packet at the end flushes the decoder."""
        import av
        key, resources = self._sequences[id(stream)]
        tb, kind, t0 = stream.time_base, stream.type, 0.0
        pcm = _pcm_layout(stream) if kind == "audio" else None
        for res in resources:
            step = float(res.duration / res.edit_rate)
            for _ in range(res.repeat):
                if t0 + step <= from_s or res.path in self.unreadable:  # (an unreadable one is in `lost` already)
                    t0 += step
                    continue
                if res.is_gap:  # (in `lost` already)
                    if pcm is not None:
                        yield from _silence(stream, pcm, max(t0, from_s), t0 + step)
                    t0 += step
                    continue
                container = self._container(res.path, key)
                own = getattr(container.streams, kind)[0]
                start = (container.start_time or 0) / 1_000_000 + float(res.entry / res.edit_rate)
                end, reached = None, False
                try:
                    container.seek(int((start + max(0.0, from_s - t0)) * 1_000_000), backward=True)
                    for packet in container.demux(own):
                        if not packet.size:
                            continue  # a track file's end: the decoder is flushed once, at the composition's
                        if packet.pts is None and end is None:
                            continue  # (no time yet to place it by)
                        t = float(packet.pts * packet.time_base) - start if packet.pts is not None else end
                        if t >= step - 1e-6:
                            reached = True
                            break
                        end = t + float((packet.duration or 0) * packet.time_base)
                        if end <= 1e-6 and t < 0:
                            continue  # before the entry point
                        if pcm is not None and (t < 0 or end > step):  # its samples outside the stretch are cut
                            packet, t, end = _cut_pcm(packet, pcm, t, end, step, tb)
                            if not packet.size:
                                continue  # (an empty packet would flush the decoder)
                        at = t0 + t
                        packet.stream = stream
                        packet.time_base = tb
                        packet.pts = packet.dts = int(round(at / tb))
                        yield at, packet
                except Exception as exc:  # damaged part way: the rest of this stretch is lost, the next is read
                    if self._storage_failure(exc, res.path):
                        raise
                    reached, why = False, f"{type(exc).__name__}: {exc}"
                else:
                    why = "it ends before its stretch does: cut short?"
                lost_from = t0 + max(end or 0.0, from_s - t0, 0.0)
                if not reached and t0 + step - lost_from > max(2 / float(res.edit_rate), CUT_SHORT_S):
                    self.lost.append(LostStretch(stream, kind, lost_from, t0 + step, res.path.rsplit("/", 1)[-1], why))
                t0 += step
        flush = av.Packet()  # (with the stream's time base, or the frames it drains come out at 0 s)
        flush.stream, flush.time_base = stream, tb
        yield math.inf, flush

    def close(self) -> None:
        for c in self._files.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing what failed to read
                pass
        self._files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


PICTURE_KEY = "picture"  # the picture's key among a composition's sequences (a sound sequence's is its place)
SILENCE_PACKET_S = 1.0  # a sound's gap is given to its decoder as packets of silence this long
_PCM = re.compile(r"^pcm_[suf](8|16|24|32|64)(?:le|be)?$")


@dataclasses.dataclass(frozen=True)
class _PcmLayout:
    """How a PCM stream lays out its samples in a packet: bytes per sample frame (all channels), samples a second."""
    frame_bytes: int
    rate: int


def _pcm_layout(stream) -> Optional[_PcmLayout]:
    """The PCM layout of a sound stream (IMF and DCP sound is PCM), or None for another codec: its packets are then
    kept whole and a gap left as a hole."""
    cc = stream.codec_context
    found = _PCM.match(cc.name or "")
    if not found or not cc.sample_rate or not cc.channels:
        return None
    return _PcmLayout(int(found.group(1)) // 8 * cc.channels, int(cc.sample_rate))


def _cut_pcm(packet, pcm: _PcmLayout, t: float, end: float, step: float, tb: Fraction):
    """A PCM packet at stretch time `t` to `end` cut to the stretch (0 to `step`): (the packet, its start, its end;
    its duration in the time base `tb`).
    Before 2026-12-06 a packet over the stretch's end was kept whole, so the next reel's first 20-40 ms (23.976
    packages) carried this reel's sound, and an AudioOverlap row was written; one over the entry point is cut
    there to the sample too (before: to the packet)."""
    import av
    data = bytes(packet)
    n = len(data) // pcm.frame_bytes
    first = min(n, max(0, round(-t * pcm.rate)))
    last = max(first, min(n, round((step - t) * pcm.rate)))
    cut = av.Packet(data[first * pcm.frame_bytes:last * pcm.frame_bytes])
    cut.time_base = tb
    cut.pts = cut.dts = 0
    cut.duration = int(round((last - first) / pcm.rate / tb))
    return cut, t + first / pcm.rate, t + last / pcm.rate


def _silence(stream, pcm: _PcmLayout, from_s: float, to_s: float) -> Iterator:
    """(composition time, packet) of silence for a sound's gap from `from_s` to `to_s`, a SILENCE_PACKET_S packet
    at a time (a reel's gap is minutes: never held whole)."""
    import av
    tb, at = stream.time_base, from_s
    while to_s - at > 0.5 / pcm.rate:
        n = max(1, min(round(SILENCE_PACKET_S * pcm.rate), round((to_s - at) * pcm.rate)))
        packet = av.Packet(bytes(n * pcm.frame_bytes))
        packet.stream, packet.time_base = stream, tb
        packet.pts = packet.dts = int(round(at / tb))
        packet.duration = int(round(n / pcm.rate / tb))
        yield at, packet
        at += n / pcm.rate


def open_composition(path: str, opener: Callable,
                     storage_failure: Callable[[BaseException, str], bool] = lambda exc, path: False
                     ) -> CompositionContainer:
    """The composition at `path` as a container (CompositionError when it cannot be read)."""
    comp = read_composition(path)
    comp.check()
    gone = [p for p in comp.track_files if not FileSystems.exists(p)]
    if gone:
        raise CompositionError(f"{path.rsplit('/', 1)[-1]} plays {gone[0].rsplit('/', 1)[-1]}, which its asset map "
                               f"lists but is not there ({len(gone)} track file(s) missing)")
    return CompositionContainer(comp, opener, storage_failure)


def title_name(path: str) -> Optional[str]:
    """A composition's readable name for its film id: the package's folder (CPL files are named by uuid)."""
    if not is_composition(path):
        return None
    folder = _folder(path).rstrip("/").rsplit("/", 1)[-1]
    return folder or None
