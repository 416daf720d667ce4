"""Discover films: match globs through Beam's FileSystems, give each a stable id and a cheap content fingerprint.

The fingerprint reads size + three 1 MiB blocks (head, middle, tail), so it costs 3 MiB of I/O even on a 50 GB
file, yet changes when a file is replaced, re-encoded, truncated or appended to.
"""
from __future__ import annotations

import hashlib
import heapq
import logging
import os
import re
import stat
import unicodedata
import warnings
from typing import Callable, Iterable, Iterator, Optional

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes, FileMetadata, MatchResult
from apache_beam.io.filesystems import FileSystems

from transforms import dvd, imf
from transforms.elements import ERRORS_TAG, FilmError, FilmRef

LOG = logging.getLogger(__name__)
_LINKS_SAID: set[str] = set()  # paths one_path_per_file has said are one file

# literal_glob's one-character classes ('[[]' for a '[' in "Film [1080p]") make Python's re warn, through Beam's
# pattern translation, of a "Possible nested set" on every match of such a name: they are meant, not nested sets.
warnings.filterwarnings("ignore", message="Possible nested set", category=FutureWarning,
                        module=r"apache_beam\.io\.filesystem")

BLOCK_BYTES = 1 << 20
# Files a film glob may also match that are never films themselves: sidecars, our own outputs, posters and
# thumbnails, and the metadata that media managers and checksummers leave beside films.
NOT_FILMS = (".srt", ".vtt", ".ass", ".ssa", ".smi", ".sami", ".sub", ".idx", ".ttml", ".dfxp", ".itt", ".scc", ".stl",
             ".sup", ".ifo", ".bup", ".txt", ".json", ".parquet", ".nfo", ".jpg", ".png", ".jpeg", ".webp", ".gif",
             ".bmp", ".tif", ".tiff", ".heic", ".xml", ".db", ".ini", ".pdf", ".md5", ".sha1", ".sfv", ".log", ".csv",
             ".html", ".htm", ".md", ".url", ".lnk", ".tsv", ".yaml", ".yml", ".xls", ".xlsx", ".doc", ".docx",
             ".rtf", ".edl", ".ale", ".cdl", ".cube", ".3dl", ".ttf", ".otf", ".ttc", ".woff", ".woff2", ".bdmv",
             ".mpls", ".clpi", ".bdjo")
# (.ifo, .bup: a DVD's navigation files; .bdmv, .mpls, .clpi, .bdjo: a Blu-ray's (index, playlists, clip
# information, BD-J objects, with their BACKUP copies: before 2026-12-07 each a failed film, eight a disc); .edl /
# .ale / .cdl / .cube / .3dl: edit lists, Avid logs, colour decisions and LUTs that post-production leaves beside a
# film; .ttf / .otf / .ttc / .woff / .woff2: fonts, as an Interop DCP
# carries its subtitles' font in its package: before 2026-12-06 a failed film, "not a readable media file")
# Frames of an image sequence (film scans, VFX plates, masters delivered as DPX or OpenEXR, JPEG 2000 codestreams): a
# folder holds one file per frame, each of which was a failed "film"; they are not read (the launcher counts them).
SEQUENCE_FRAMES = (".dpx", ".exr", ".cin", ".j2c", ".j2k", ".jp2", ".tga", ".dng")
NOT_FILMS += SEQUENCE_FRAMES
# Files still being downloaded or copied (browsers, torrent and download managers, WinSCP): a .part scored as a film,
# then the finished film again under its own name, counted twice for good (before 2026-12-07). They are read once
# complete, under their final name (the launcher counts them).
DOWNLOADING = (".part", ".partial", ".crdownload", ".download", ".!qb", ".!ut", ".aria2", ".filepart", ".opdownload",
               ".tmp")
NOT_FILMS += DOWNLOADING
# Backup copies editors and tools leave beside a file (film.mp4~, film.mp4.bak, film.mp4.orig): a copy of a film
# scored under its own name, its clips counted twice in the catalogue (before 2026-12-07; the launcher counts them).
BACKUPS = ("~", ".bak", ".orig")
NOT_FILMS += BACKUPS
# Files without an extension that are never films: an Interop DCP's volume index (its ASSETMAP is read, transforms.imf),
# a run's guard file (pipeline.output_lock: an --output inside an --input folder had it scored as a failed film)
NOT_FILM_NAMES = ("volindex", "_run.lock")
# Folders that file servers and desktops add inside an archive (NAS thumbnails, recycle bins, macOS copies).
SYSTEM_FOLDERS = ("@eadir", "#recycle", "$recycle.bin", ".appledouble", ".trashes", ".@__thumb", "__macosx")


def slug(text: str, max_len: int = 40) -> str:
    """A file-name-safe, readable name in any script: accents on Latin letters go (Amélie -> amelie, as people
    type it), other scripts keep their letters and marks (kana voicing, Devanagari vowel signs, Hangul), the rest
    becomes '-'. (Before 2026-12-03 every letter outside a-z was dropped: 'Épisode' gave 'pisode'.)"""
    kept: list[str] = []
    for c in unicodedata.normalize("NFKD", text.lower()):
        if unicodedata.combining(c) and kept and kept[-1].isascii():
            continue  # an accent on a Latin letter
        kept.append(c if unicodedata.category(c)[0] in "LNM" else "-")
    s = re.sub("-+", "-", unicodedata.normalize("NFKC", "".join(kept))).strip("-")
    return s[:max_len].rstrip("-") or "film"


def path_text(path: str) -> str:
    """A path as text every table and Beam coder can hold. A local file name that is not UTF-8 (bytes from an old
    Latin-1 share) comes from the OS with surrogates for those bytes: they are written as \\xNN."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def film_id_for(path: str, salt: str = "") -> str:
    """Stable per path: readable stem slug + a hash of the full path (two films called intro.mp4 differ); a DVD
    title is named by its disc's folder (transforms.dvd.title_name), not VTS_01_1, and an IMF / DCP composition by its
    package's folder (transforms.imf.title_name), not its CPL's uuid. With `salt` (a film's content fingerprint), the
    hash covers it too: the id of a new film at a path whose own id went with the film that moved away from it
    (transforms.write.SkipDone); without it, ids are as they always were."""
    stem = (dvd.title_name(path) or dvd.bluray_stream_name(path) or imf.title_name(path)
            or os.path.splitext(path.rstrip("/").rsplit("/", 1)[-1])[0])
    key = f"{path}\0{salt}" if salt else path  # (no path holds a NUL)
    return f"{slug(stem)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"  # (path_text: always UTF-8)


def content_fingerprint(path: str, size_bytes: int | None = None, block: int = BLOCK_BYTES) -> str:
    """sha256 over the size and the head, middle and tail blocks, read through FileSystems."""
    if size_bytes is None:
        size_bytes = FileSystems.match([literal_glob(path)])[0].metadata_list[0].size_in_bytes
    h = hashlib.sha256(str(size_bytes).encode())
    offsets = sorted({0, max(0, size_bytes // 2 - block // 2), max(0, size_bytes - block)})
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for off in offsets:
            f.seek(off)
            h.update(f.read(block))
    return h.hexdigest()


def stat_now(path: str) -> tuple[int, int | None] | None:
    """(size, modification time in ns or None where its filesystem gives none) of the file as it is now; None when
    it is not there any more."""
    local = local_path(path)
    try:
        if local is not None:
            st = os.stat(local)
            return st.st_size, st.st_mtime_ns
        found = FileSystems.match([literal_glob(path)])[0].metadata_list
        stamp = found[0].last_updated_in_seconds if found else None
        return (found[0].size_in_bytes, int(stamp * 1e9) if stamp else None) if found else None
    except (OSError, IndexError, ValueError):
        return None


def size_now(path: str) -> int | None:
    """The file's size as it is now; None when it is not there any more."""
    now = stat_now(path)
    return now[0] if now else None


def modified_ns(path: str) -> int | None:
    """When the file was last written (ns), from the local disk or its filesystem's listing; None where unknown."""
    now = stat_now(path)
    return now[1] if now else None


def special_file(path: str) -> str | None:
    """What a local path is when it is not a regular file or a folder: 'a named pipe', 'a socket', 'a device'. Reading
    a named pipe with no writer never ends: one in an archive held a whole run (2026-12-06). None otherwise (and for
    paths on other Beam filesystems, which hold only objects)."""
    local = local_path(path)
    try:
        mode = os.stat(local).st_mode if local is not None else None
    except OSError:
        return None
    if mode is None or stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"


def local_path(path: str) -> str | None:
    """The operating system's path of a local file (plain or file://); None on other Beam filesystems (gs://, ...)."""
    if "://" in path and not path.startswith("file://"):
        return None
    return path.removeprefix("file://")


PATTERN_CHARS = "[*?"  # what a Beam file pattern reads as other than itself


def has_pattern_chars(text: str) -> bool:
    """Whether a path or pattern holds a character a file pattern reads as a wildcard or a class (PATTERN_CHARS)."""
    return any(c in text for c in PATTERN_CHARS)


def literal_glob(text: str) -> str:
    """`text` as a Beam file pattern that matches only itself: release names carry brackets ("Film [1080p]"),
    which a pattern reads as a character class; Beam has no escape character, but a one-character class does."""
    return "".join(f"[{c}]" if c in PATTERN_CHARS else c for c in text)


def stored_form(pattern: str) -> str:
    """A local pattern in the Unicode form its folders are stored in: a name typed composed ('Amélie', NFC) finds
    the folder a macOS copy stored decomposed (NFD), and the other way round; before 2026-12-07 it matched no film,
    though `ls` shows the same name. The pattern as given where its literal part is there or in neither form."""
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    literal = head if head == pattern else head.rsplit("/", 1)[0]
    if "://" in pattern or not literal or os.path.exists(literal):
        return pattern
    for form in ("NFD", "NFC"):
        other = unicodedata.normalize(form, literal)
        if other != literal and os.path.exists(other):
            return other + pattern[len(literal):]
    return pattern


def normalise_pattern(pattern: str) -> str:
    """A bare directory means every file below it; a local path that names an existing file or directory is
    taken literally (`Film [1080p].mkv`), whatever pattern characters its name has, with or without the trailing
    '/' that tab completion adds (before 2026-12-06 'Films [2024]/' was read as a pattern and matched no film); its
    folders' names in the Unicode form they are stored in (stored_form)."""
    pattern = stored_form(pattern)
    if "://" not in pattern and os.path.isdir(pattern):
        return literal_glob(pattern.rstrip("/")) + "/**"
    if pattern.endswith("/"):
        return pattern + "**"
    if "://" not in pattern and os.path.isfile(pattern) and has_pattern_chars(pattern):
        return literal_glob(pattern)
    return literal_folders(pattern)


def literal_folders(pattern: str) -> str:
    """A local pattern whose leading folders are there as written, pattern characters and all, with those folders
    taken literally: 'Films [2024]/*.mp4' lists the folder 'Films [2024]' (before 2026-12-07 its brackets were a
    character class and the pattern matched no film; only the folder given alone was taken literally)."""
    if "://" in pattern:
        return pattern
    parts = pattern.split("/")
    for k in range(len(parts) - 1, 0, -1):
        folder = "/".join(parts[:k])
        if has_pattern_chars(folder) and os.path.isdir(folder):
            return literal_glob(folder) + "/" + "/".join(parts[k:])
    return pattern


# A '**' that is a whole folder name: 'archive/**/*.mp4' (also at the pattern's start)
GLOBSTAR_FOLDERS = re.compile(r"(?:^|(?<=/))\*\*/")


def pattern_regex(pattern: str) -> re.Pattern:
    """A glob as Beam's listing reads it ('**' any depth, '*' within a folder), except that a '**/' folder may also
    be none, as in a shell's globstar: 'archive/**/*.mp4' matches archive/a.mp4 too (Beam's own reading, '.*/',
    needs a folder, and before 2026-12-06 the README's own example missed every film at the top of the archive).
    literal_glob's '[[]' is compiled without the "Possible nested set" warning (it printed in the launcher's
    output)."""
    from apache_beam.io.filesystem import FileSystem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        # translate_pattern gives '(?ms)' + body + '\\Z': the pieces' bodies are joined by an optional folder path
        bodies = [FileSystem.translate_pattern(piece)[len("(?ms)"):-len(r"\Z")]
                  for piece in GLOBSTAR_FOLDERS.split(pattern)]
        return re.compile("(?ms)" + "(?:.*/)?".join(bodies) + r"\Z")


def match_patterns(patterns: list[str]) -> list[MatchResult]:
    """FileSystems.match for --input patterns (normalise_pattern's), each as _match_one lists it, a local file reached
    by several paths listed once in all (one_path_per_file)."""
    return one_path_per_file([MatchResult(p, _match_one(p)) for p in patterns])


def match_pattern(pattern: str) -> list[FileMetadata]:
    """The files one (normalised) --input pattern matches, as match_patterns lists them."""
    return match_patterns([pattern])[0].metadata_list


def file_key(path: str) -> Optional[tuple[int, int]]:
    """(device, inode) of a local path that is there: one file however it is reached (a link, a second link to its
    folder); None for a path not there or not local."""
    local = local_path(path)
    try:
        st = os.stat(local) if local is not None else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st is not None else None


def one_path_per_file(results: list[MatchResult]) -> list[MatchResult]:
    """`results` with each local file (device and inode) under one path only, across every pattern: the one with the
    fewest symbolic links in it, then the smallest. A file link beside its target, or two patterns overlapping through
    a folder link, reached one film by two paths, and before 2026-12-06 it was scored twice. Remote objects are kept
    as listed (they have no links)."""
    paths: dict[tuple[int, int], list[str]] = {}
    for m in (m for r in results for m in r.metadata_list):
        key = file_key(m.path)
        if key is not None:
            paths.setdefault(key, []).append(m.path)
    dropped: set[str] = set()
    said: list[str] = []
    for same in (set(same) for same in paths.values()):
        if len(same) > 1:
            kept = min(same, key=lambda p: (_links_in(p), p))
            dropped |= same - {kept}
            if not same <= _LINKS_SAID:
                _LINKS_SAID.update(same)
                said.append(f"{', '.join(sorted(same - {kept}))} as {kept}")
    # said (one line, once a process: the launcher and the pipeline list alike), so a film missing from the outputs
    # under one of its paths is not a mystery (a hard link looks like a film of its own in any listing)
    if said:
        LOG.info("%d file(s) reached by more than one path (links) are scored once each: %s%s", len(said),
                 "; ".join(sorted(said)[:3]), " ..." if len(said) > 3 else "")
    return [MatchResult(r.pattern, [m for m in r.metadata_list if m.path not in dropped]) for r in results]


def _links_in(path: str) -> int:
    """How many of a local path's folders and its file are symbolic links."""
    parts, n = local_path(path).split("/"), 0
    for i in range(1, len(parts) + 1):
        n += os.path.islink("/".join(parts[:i]) or "/")
    return n


def _match_one(pattern: str) -> list[FileMetadata]:
    """The files a (normalised) --input pattern matches: as Beam's FileSystems.match lists them, except that a
    local folder behind a symbolic link is listed too (_local_matches), 'X/**/Y' matches X/Y too (pattern_regex), and
    files inside a hidden folder below the pattern's own folders are left out (outside_hidden_folders)."""
    if "://" not in pattern and has_pattern_chars(pattern):
        return _local_matches(pattern)
    head = _listing_head(pattern)
    listed = FileSystems.match([head])[0].metadata_list
    if head != pattern:  # the same listing as the pattern's own (Beam lists from the part before any glob)
        wanted = pattern_regex(pattern)
        listed = [m for m in listed if wanted.fullmatch(m.path)]
    shown = outside_hidden_folders(pattern)
    return [m for m in listed if shown(m.path.rsplit("/", 1)[0])]


def _listing_head(pattern: str) -> str:
    """The pattern cut after its first '**/' folder ('gs://b/films/**' of 'gs://b/films/**/*.mp4'): Beam lists
    the same objects for both, and pattern_regex then picks what the whole pattern matches. Without one, the
    pattern itself."""
    found = GLOBSTAR_FOLDERS.search(pattern)
    return pattern[:found.start() + 2] if found else pattern


def _local_matches(pattern: str) -> list[FileMetadata]:
    """A local pattern's files, from _local_folders: folders behind symbolic links are listed (Beam's os.walk does
    not enter them, and before 2026-12-06 the films of a catalogue kept as links into storage volumes were never
    scored), each film under the path as given. A file that cannot be read is passed over as Beam does
    (unreachable_inputs names it)."""
    wanted = pattern_regex(pattern)
    found = []
    for folder, entries in _local_folders(_pattern_root(pattern), _worth_entering(pattern)):
        for e in entries if isinstance(entries, list) else []:
            path = os.path.join(folder, e.name)
            if _is_folder(e) or not wanted.fullmatch(path):
                continue
            try:
                st = e.stat()
            except OSError:
                continue
            found.append(FileMetadata(path, st.st_size, st.st_mtime))
    return found


def _pattern_root(local: str) -> str:
    """The folder a local pattern's listing starts from: the one holding its first glob character, as Beam's."""
    return os.path.dirname(re.split(r"[*?\[]", local, maxsplit=1)[0])


def _local_folders(root: str, may_enter: Callable[[str], bool]) -> Iterator[tuple[str, list | OSError]]:
    """(folder, its entries sorted by name, or the OSError that kept them) for `root` and each folder below it that
    `may_enter` accepts, folders behind symbolic links included. Each real folder (device and inode) is listed
    once, so a link loop ends; folders behind links are entered after every folder reached without one, so a
    folder reached both ways keeps its own path (and its films their ids). Those are entered smallest path first
    (a folder's own paths are larger than its path), so a folder reached only through links is listed under the
    smallest of its paths whatever links are added or found first: before 2026-12-06 the first link found won, and a
    second link to a listed folder could move its films to new paths (and ids)."""
    seen: set[tuple[int, int]] = set()
    plain: list[str] = [root]
    linked: list[str] = []  # (a heap) the folders found after every folder reached without a link
    while plain or linked:
        linked_walk = not plain  # (below a link, plain folders too wait their turn by path)
        folder = plain.pop() if plain else heapq.heappop(linked)
        try:
            st = os.stat(folder or ".")
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder or "."), key=lambda e: e.name)
        except OSError as exc:
            yield folder, exc
            continue
        yield folder, entries
        for e in reversed(entries):  # (popped from the end: in name order)
            if not _is_folder(e):
                continue
            path = os.path.join(folder, e.name)  # ('*.mp4' in the working folder: 'a.mp4', not './a.mp4')
            if not may_enter(path):
                continue
            if e.is_symlink() or linked_walk:
                heapq.heappush(linked, path)
            else:
                plain.append(path)


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder or a link to one; a link whose target cannot be looked at is not."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _worth_entering(local: str) -> Callable[[str], bool]:
    """Whether a folder below a local pattern's root is listed: it could hold files the pattern matches (_may_hold)
    and it is not hidden (outside_hidden_folders)."""
    may_hold, shown = _may_hold(local), outside_hidden_folders(local)
    return lambda folder: may_hold(folder) and shown(folder)


def outside_hidden_folders(pattern: str) -> Callable[[str], bool]:
    """Whether a folder is outside every hidden folder (a name with a leading dot: .Trash-1000, .snapshot, .sync) that
    the pattern does not spell out: '/home/me/.films/**' and 'archive/.*/*.mp4' name theirs. Hidden files were left
    out already (is_film_candidate); before 2026-12-06 the films inside hidden folders were scored."""
    parts = pattern.split("://", 1)[-1].split("/")
    star = next((i for i, p in enumerate(parts) if "**" in p), len(parts))

    def shown(folder: str) -> bool:
        names = folder.split("://", 1)[-1].split("/")
        return not any(n.startswith(".") and n not in (".", "..") and not (i < star and parts[i].startswith("."))
                       for i, n in enumerate(names))
    return shown


UNLISTED_FOLDERS = ("lost+found", "system volume information")  # a volume's own, closed to users: not reported
# A name with a file's extension (b.mkv, a.m2ts): a link of that name whose target is not there was a file, not a folder
FILE_NAME = re.compile(r"\.[A-Za-z][A-Za-z0-9]{1,4}$")


def unreachable_inputs(pattern: str) -> list[tuple[str, str]]:
    """(path, why) for what a local --input pattern covers but Beam's listing leaves out without a word, so their
    films would vanish from a run unannounced: symbolic links whose target is not there (a catalogue kept as links
    into storage volumes, one not mounted) and folders that cannot be read (permissions). [] on other filesystems,
    which have neither."""
    local = local_path(normalise_pattern(pattern))
    if local is None:
        return []
    if not has_pattern_chars(local):  # one file, named
        return [(local, _missing_target(local))] if os.path.islink(local) and not os.path.exists(local) else []
    wanted, root, enters = pattern_regex(local), _pattern_root(local), _worth_entering(local)
    found = []
    # the folders match_pattern lists, those behind links included (before 2026-12-06 they were not entered)
    for folder, entries in _local_folders(root, enters):
        if isinstance(entries, FileNotFoundError):  # the pattern's own folder not there: "matches no film file"
            continue
        if isinstance(entries, OSError):
            name = os.path.basename(folder).lower()
            if folder != root and not name.startswith(".") and name not in SYSTEM_FOLDERS + UNLISTED_FOLDERS:
                found.append((folder, f"a folder that cannot be read ({entries.strerror or entries})"))
            continue
        for path in (os.path.join(folder, e.name) for e in entries if e.is_symlink()):
            # a link that could be a folder the pattern enters counts too: 'archive/**/*.mp4' matches no link
            # named 'docs', and before 2026-12-06 the films of a volume not mounted there were counted gone
            maybe_folder = enters(path) and not FILE_NAME.search(path)
            if not os.path.exists(path) and (wanted.fullmatch(path) or maybe_folder) and is_film_candidate(path):
                found.append((path, _missing_target(path)))
    return sorted(found)


def _may_hold(local: str) -> Callable[[str], bool]:
    """Whether a folder could hold files the pattern matches, so its closed door hides films and it is worth
    entering: its names agree with the pattern's folder part as deep as both go, below a '**' at any depth, else no
    deeper than the pattern's files ('archive/*.mp4' does not cover archive/private/, 'archive/*/films/**' neither
    archive/x/other/; before 2026-12-06 a '**' pattern covered every folder under its fixed part, and a closed
    folder between a fixed part and the files, archive/x of 'archive/*/films/*.mp4', was not reported)."""
    parts = local.split("/")
    star = next((i for i, p in enumerate(parts) if "**" in p), None)
    fixed = star if star is not None else len(parts) - 1  # folder names the pattern spells out
    prefixes = [pattern_regex("/".join(parts[:n])) for n in range(fixed + 1)]

    def may_hold(folder: str) -> bool:
        names = folder.split("/")
        if star is None and len(names) > fixed:
            return False
        n = min(len(names), fixed)
        return prefixes[n].fullmatch("/".join(names[:n])) is not None
    return may_hold


def _missing_target(link: str) -> str:
    return f"a link to {os.readlink(link)}, which is not there"


def is_film_candidate(path: str) -> bool:
    """Not a sidecar, image or metadata file (NOT_FILMS), not hidden (.DS_Store, the AppleDouble ._film.mp4
    that macOS writes on network shares), not inside a system folder (SYSTEM_FOLDERS), not a DVD's menu."""
    parts = path.lower().split("://", 1)[-1].split("/")
    return not (parts[-1].endswith(NOT_FILMS) or parts[-1].startswith(".") or parts[-1] in NOT_FILM_NAMES
                or any(p in SYSTEM_FOLDERS for p in parts[:-1]) or dvd.is_menu(path))


def film_fingerprints(path: str, size_bytes: int | None = None) -> tuple[str, str]:
    """(the film's own bytes, the film as a nightly run compares it). The first is content_fingerprint (a DVD title's
    parts joined): it finds a film moved or renamed with its sidecars. The second joins it with the film file's
    modification time and the subtitle sidecars' names, sizes and modification times: a film written again (a
    repaired copy over a damaged one, a download finished in place) and new or corrected subtitles are new input.
    The three sampled blocks alone missed a copy that differed elsewhere: a film damaged at a quarter of its length,
    copied again from its source, kept its damaged clips for good (before 2026-12-07)."""
    from transforms.subtitles import sidecars_digest  # (subtitles imports this module)
    fp, subs = content_fingerprint(path, size_bytes), sidecars_digest(path)
    later = dvd.title_parts(path)[1:]  # a DVD title's later parts: their content is the film's too
    if imf.is_composition(path):  # a composition: its CPL and every track file it plays
        later = [(p, None) for p in imf.read_composition(path).track_files]
    if later:
        fp = hashlib.sha256(" ".join([fp] + [content_fingerprint(p, size) for p, size in later]).encode()).hexdigest()
    stamps = " ".join(str(modified_ns(p)) for p in [path] + [p for p, _ in later])
    return fp, hashlib.sha256(f"{fp} {stamps} {subs}".encode()).hexdigest()


def film_fingerprint(path: str, size_bytes: int | None = None) -> str:
    """The fingerprint that decides whether a film is redone: its bytes and its sidecars (film_fingerprints)."""
    return film_fingerprints(path, size_bytes)[1]


class FingerprintFilm(beam.DoFn):
    """FilmRef -> FilmRef with its fingerprint (film_fingerprint); an unreadable file becomes a fatal FilmError."""

    def process(self, ref: FilmRef) -> Iterable:
        # No bare return beside the yields: Beam warns about that mix on every run.
        if path_text(ref.path) != ref.path:
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, self._not_utf8(ref))
        else:
            yield from self._fingerprinted(ref)

    @staticmethod
    def _fingerprinted(ref: FilmRef) -> list:
        kind = special_file(ref.path)
        if kind is not None:  # not opened: a pipe's read would wait for ever
            return [beam.pvalue.TaggedOutput(ERRORS_TAG, FilmError(
                film_path=ref.path, film_id=ref.film_id, stage="discover", error_type="NotAFile",
                message=f"{kind}, not a file: not read (a film must be a regular file)", ref=ref))]
        try:
            if dvd.read_with_first_part(ref.path):
                return []  # VTS_01_2.VOB: part of the title its VTS_01_1.VOB is
            stamp = modified_ns(ref.path)  # (before the read: a write during it shows as a later stamp)
            content, fp = film_fingerprints(ref.path, ref.size_bytes)
        except Exception as exc:  # noqa: BLE001 - any I/O failure is this film's error, not the run's
            return [beam.pvalue.TaggedOutput(ERRORS_TAG, FilmError.from_exception(ref, "fingerprint", exc))]
        return [FilmRef(path=ref.path, size_bytes=ref.size_bytes, film_id=ref.film_id, fingerprint=fp,
                        content_fingerprint=content, modified_ns=stamp)]

    @staticmethod
    def _not_utf8(ref: FilmRef) -> FilmError:
        text = path_text(ref.path)
        shown = FilmRef(path=text, size_bytes=ref.size_bytes, film_id=film_id_for(text))
        return FilmError(film_path=text, film_id=shown.film_id, stage="discover", error_type="PathNotUtf8",
                         message="the file name is not UTF-8 text (its \\xNN bytes are from another encoding, e.g. "
                                 "Latin-1 from an old file share), so it cannot be written in the tables: rename it "
                                 "in UTF-8 (convmv -f latin1 -t utf-8 --notest FILE)", ref=shown)


def _titles(path_size: tuple[bytes, int]) -> list[tuple[bytes, int]]:
    """A matched file as the films it gives: itself, or the CPLs of the IMF / DCP package it belongs to."""
    path = path_size[0].decode("utf-8", "surrogateescape")
    return [(p.encode("utf-8", "surrogateescape"), size) for p, size in imf.film_paths([(path, path_size[1])])]


def _listed_together(patterns: list[str]) -> list[FileMetadata]:
    """Every pattern's files, as match_patterns lists them (a file reached by two paths, once)."""
    return [m for r in match_patterns(patterns) for m in r.metadata_list]


def _film_ref(path: str, size: int) -> FilmRef:
    return FilmRef(path=path, size_bytes=size, film_id=film_id_for(path_text(path)))


class DiscoverFilms(beam.PTransform):
    """Globs -> PCollection[FilmRef] (fingerprinted, sharded across workers) plus an 'errors' output."""

    def __init__(self, patterns: list[str]):
        super().__init__()
        self.patterns = [normalise_pattern(p) for p in patterns]

    def expand(self, pbegin):
        refs = (pbegin
                | "Patterns" >> beam.Create([self.patterns])
                # (before 2026-12-06 fileio.MatchAll: Beam's listing, which left out folders behind links); the
                # patterns are listed together, so that a file two of them reach by two paths is listed once
                | "Match" >> beam.FlatMap(_listed_together)
                | "DropSidecars" >> beam.Filter(lambda m: is_film_candidate(m.path) or imf.is_asset_map(m.path))
                # as bytes: a name that is not UTF-8 would stop Beam's string coder, and with it the whole run
                | "PathSize" >> beam.Map(lambda m: (m.path.encode("utf-8", "surrogateescape"), m.size_in_bytes))
                | "Dedupe" >> beam.Distinct()  # overlapping globs must not process a film twice
                # One pattern can match thousands of films: spread them before any per-film work.
                | "Shard" >> beam.Reshuffle()
                # an IMF / DCP package's asset map and track files -> its compositions (CPLs), the titles, once each
                | "Packages" >> beam.FlatMap(_titles)
                | "OnePerTitle" >> beam.GroupByKey()
                | "ToFilmRef" >> beam.MapTuple(lambda raw, sizes: _film_ref(raw.decode("utf-8", "surrogateescape"),
                                                                          next(iter(sizes)))))
        return refs | "Fingerprint" >> beam.ParDo(FingerprintFilm()).with_outputs(ERRORS_TAG, main="films")
