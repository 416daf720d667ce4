"""The language of a film's dialogue, and whether the head's text path can read it.

The shipped head's text path learnt English lines only (all-MiniLM-L6-v2 is an English encoder; MELD is English),
so a line in another language would give text "evidence" no labelled data ever taught: a guess that looks
grounded. The pipeline reads a line only when its language is one the text path learnt (`--text_languages`,
default `model.encoders.versions.TEXT_LANGUAGES`) or is unknown; other lines stay in the clips table but are not
encoded, and the clip is scored from its frames, faces and speech.

Where a line's language comes from: subtitles are identified from all of the film's lines at once (py3langid, a
naive Bayes model over byte n-grams shipped inside its wheel): one film's subtitles are one language, and a
film's text is long enough to tell where one line is not. When the text is too short or the model unsure, the
sidecar's name (`film.fr.srt`) or the embedded stream's tag decides; without one the language stays unknown and
the lines are read. Speech recognition's lines carry Whisper's detection from the audio.
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import re
import unicodedata
from collections import Counter
from typing import Iterable, Optional, Sequence

from model.encoders.versions import TEXT_LANGUAGES

# Enough text to identify. On MELD's 1,152 train and dev dialogues (English) no first line alone is called another
# language at this probability, and 108 of the 114 dev dialogues are called English from all their lines (the
# others stay unknown, hence read): tests/test_subtitles.py.
MIN_LETTERS = 20
MIN_PROBABILITY = 0.9
ANY = "any"  # --text_languages any: read every line
# The language of lines long enough to identify that the identifier cannot name (under MIN_PROBABILITY) and whose
# likeliest language is none the text path reads: not read, like a language it did not learn. Romanised Hindi is
# Bikol 0.29, Javanese 0.21 to it, English not among its five likeliest; before 2026-12-07 such lines were "unknown",
# so read by the English text model ("Maine kuch galat nahi kiya!", I did nothing wrong: joy 0.85, grounded). On
# MELD, 27 of 1,107 dialogues are unsure, 26 of them English first.
UNIDENTIFIED = "unidentified"
# ...given this much text: below it an unsure first guess says little (GoEmotions dev: 21 of 5,426 English comments,
# 20-75 letters each, have another; MELD train: one dialogue of 39 letters), and such lines are read as before. A
# film's subtitles hold thousands of letters; the five romanised Hindi lines above, 109.
MIN_UNIDENTIFIED_LETTERS = 100
# One line of another language among a film's takes its film's language, identified from all of them. Alone, a line
# of at least MIN_LINE_LETTERS letters that the identifier gives the languages the text path reads less than
# LINE_PROBABILITY in all is not read (line_unlike; not where a tag the line carries decides its language: a track's
# or sidecar's where the film is not identified, a manifest's column, an English set's; the identifier's 'zxx', no
# language, counts as read: interjections). Before 2026-12-07 a Spanish curse in English subtitles ("¡Te
# odio! ¡Maldito traidor, vete de aquí!", English 0.002) was read by the English text model: joy 0.83, grounded.
# Chosen on the labelled text sets (read as untagged): of the English lines of MELD, EmoryNLP and GoEmotions (about
# 63,000, train and dev), 5 fall under it (MELD train "Boutros Boutros Gali.", "Triskaidekaphobia."; GoEmotions dev
# "Run. Dandududududud", train "Ahahahahahaha!!", "Nazi propaganda"; at 0.01, 18 of the 14,184 with 12+ letters of MELD,
# EmoryNLP dev and GoEmotions dev: "Damnit, damnit, damnit, damnit."); of 28 everyday lines in 11 other languages
# and romanised Hindi, Japanese, Chinese and Russian, 25 do (the misses: English 0.005-0.009). tests/test_subtitles.py.
MIN_LINE_LETTERS = 12
LINE_PROBABILITY = 0.005


def unidentified_note(codes) -> str:
    """What a warning naming these languages adds where one is UNIDENTIFIED: what that means ('' otherwise)."""
    return (f" ({UNIDENTIFIED}: the identifier names no language in them, and none it finds likely is one the text "
            "path reads)" if UNIDENTIFIED in set(codes) else "")


def language_code(tag: Optional[str]) -> Optional[str]:
    """A language tag as its ISO 639-1 code ('eng', 'en-US', 'en_GB' -> 'en'; 'ger' -> 'de'); None for no tag,
    'und', or anything without a registered two-letter code: sidecar names carry words that are rare languages'
    three-letter codes ('sdh' for subtitles for the deaf is Southern Kurdish), so those count as no tag."""
    if not tag or not str(tag).strip():
        return None
    if "." in str(tag):  # a sidecar's tags (en.sdh, forced.de): the first that is a language
        return next((c for c in map(language_code, str(tag).split(".")) if c), None)
    code = _registered(tag)
    return code if code and len(code) == 2 else None


def _registered(tag: str) -> Optional[str]:
    """The language subtag of a tag as langcodes standardises it ('eng' -> 'en', 'tl' -> 'fil'), where the registry
    has it (langcodes passes any two characters: 'v2' from FILM_v2.srt, 'xx'); None otherwise."""
    import langcodes
    try:
        code = langcodes.Language.get(langcodes.standardize_tag(str(tag).strip().replace("_", "-"))).language
    except (ValueError, LookupError):
        return None
    return code if code and langcodes.Language.get(code).is_valid() else None


# Registered codes that name no language a line could be in: several, uncoded, no linguistic content, undetermined,
# and those tools write for "unknown" or "original" ('unk' is Enawené-Nawé's, 'nil' a placeholder; qaa-qtz are
# private use)
NOT_A_LANGUAGE = frozenset({"mul", "mis", "zxx", "und", "unk", "nil"})
_PRIVATE_USE = re.compile(r"q[a-t][a-z]")


@functools.cache
def _macrolanguages() -> dict[str, str]:
    """A language's macrolanguage from the IANA subtag registry langcodes carries ('yue' -> 'zh', 'arz' -> 'ar')."""
    from importlib.resources import files
    out, subtag = {}, None
    for line in files("langcodes").joinpath("data", "language-subtag-registry.txt").read_text("utf-8").splitlines():
        if line.startswith("Subtag: "):
            subtag = line.split(": ", 1)[1]
        elif line.startswith("Macrolanguage: ") and subtag:
            out[subtag] = line.split(": ", 1)[1]
        elif line == "%%":
            subtag = None
    return out


def line_language(tag: Optional[str]) -> Optional[str]:
    """A line's language as a code: ISO 639-1 where the language has one (language_code), else its registered
    three-letter code ('tl' -> 'fil', 'yue', 'arz'). For what names a language for sure (the identifier's or
    Whisper's answer, a line's recorded language), never for a sidecar's name words: before 2026-12-07 the
    identifier's 'tl' became 'fil', no two-letter code, so unknown, and Tagalog lines were read by the English text
    model as English (25 of its 142 languages)."""
    if tag == UNIDENTIFIED:
        return UNIDENTIFIED
    code = language_code(tag)
    if code or not tag or "." in str(tag):
        return code
    code = _registered(tag)
    return None if not code or code in NOT_A_LANGUAGE or _PRIVATE_USE.fullmatch(code) else code


def named_language(name: str) -> Optional[str]:
    """The language tag of a language's name, in English or in itself ('English' -> 'en', 'Brazilian
    Portuguese' -> 'pt-BR', 'Deutsch' -> 'de'), as release folders name subtitle files (Subs/2_English.srt); None
    when the words name no language."""
    import langcodes

    try:
        return str(langcodes.find(name.strip())) if name.strip() else None
    except LookupError:
        return None


def parse_text_languages(value) -> tuple[str, ...]:
    """'en,fr' (or a sequence) -> ('en', 'fr'); 'any' -> () (every line is read)."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    items = [str(v).strip() for v in items if str(v).strip()]
    if not items or [v.lower() for v in items] == [ANY]:
        return ()
    codes = []
    for v in items:
        code = line_language(v)  # ISO 639-1, else the three-letter code of a language with none ('fil', 'yue')
        if code is None:
            raise ValueError(f"--text_languages: {v!r} is not an ISO 639-1 language code (e.g. en, fr, de; a "
                             "three-letter one for a language without, e.g. fil; or 'any')")
        codes.append(code)
    return tuple(dict.fromkeys(codes))


def reads(language: Optional[str], languages: Sequence[str]) -> bool:
    """Whether a line in `language` is read by a text path that learnt `languages` (empty: any). A line whose
    language is unknown is read."""
    code = line_language(language)
    if code == UNIDENTIFIED:
        return not languages
    # a language of a macrolanguage named is read: Cantonese ('yue') where Chinese ('zh') is (before 2026-12-07 it was
    # unknown, so read; with its code known it was not, and no --text_languages could name it)
    return not languages or code is None or code in languages or _macrolanguages().get(code) in languages


def unread_language(text: Optional[str], language: Optional[str], languages: Sequence[str]) -> Optional[str]:
    """The ISO 639-1 code of a line the text path does not read (reads), None for a line it reads or no line."""
    return line_language(language) if text and not reads(language, languages) else None


def unread_languages(lines: Sequence[tuple[Optional[str], Optional[str]]], languages: Sequence[str],
                     identify: bool = False) -> list[Optional[str]]:
    """The one rule of which lines are read, for the (text, language tag) lines of one film: per line, the ISO
    639-1 code of a line the text path does not read (unread_language), None for one it reads. Used by the run's
    scorer (transforms.score.FilmScorer, its lines' languages set by label_cues or speech recognition) and by the
    labelled-data path (training.features.lines_as_read: a clip manifest's `language` column). `identify`: lines
    without a tag take the language identified from all of the film's lines together (detect_language; from the
    lines of their script where the film's lines are in more than one: film_founds), as label_cues gives a film's
    subtitles theirs; a film too short or unsure to tell stays unknown, hence read."""
    lines = list(lines)
    if not identify:
        return [unread_language(text, tag, languages) for text, tag in lines]
    founds = [None] * len(lines)
    if any(text and line_language(tag) is None for text, tag in lines):
        founds = film_founds([text for text, _ in lines], languages)
    # a line's own tag decides (a manifest's language column, an English set's); the others are checked line by line
    return [unread_language(text, line_language(tag) or _identified(text, found, languages), languages)
            for (text, tag), found in zip(lines, founds)]


# The scripts that write Chinese and Japanese (kanji with kana, full-width forms): one group, as the identifier
# tells those languages apart by their characters
_CJK_NAMES = frozenset({"CJK", "HIRAGANA", "KATAKANA", "FULLWIDTH", "HALFWIDTH", "IDEOGRAPHIC"})
# A cue read as a line in one script and then another (a translation under it), where no more than this share of
# its letters is on the wrong side of the cut: a name in Latin letters inside a Chinese line ('我喜欢 iPhone 你呢')
# interleaves, and the line stays one
MAX_MISPLACED = 0.1
# Each of the two is a line of its own: at least this many letters (a Chinese or Japanese line: characters, each a word
# or more; Korean: syllables), and outside those scripts two words: a name at the end of a line ('أين Paris',
# 'Это мой iPhone') is part of it (before 2026-12-07 half an Arabic track's lines so ending were taken for a bilingual
# track, and only the names read; found in review)
MIN_PART_LETTERS = {"CJK": 2, "HANGUL": 2}
MIN_PART_LETTERS_ELSE = 8
# Where this share of a track's cues with letters are such cues, the track is bilingual line by line (a 'chs&eng'
# fansub, a Japanese release's 'jpn-eng' track): each line of a cue is identified from its own script's lines
BILINGUAL_SHARE = 0.5
# Two lines of a track in two scripts shown this close together (start and end) are one line and its translation:
# ASS tracks give the translation as an event of its own style at the same times
TWIN_S = 0.5


@functools.lru_cache(maxsize=4096)
def letter_script(ch: str) -> Optional[str]:
    """The script of a letter as the first word of its Unicode name ('LATIN', 'CYRILLIC', 'HANGUL'; 'CJK' for
    Chinese and Japanese); None for what is not a letter."""
    if not ch.isalpha():
        return None
    first = unicodedata.name(ch, "").split(" ", 1)[0]
    return "CJK" if first in _CJK_NAMES else (first or None)


def main_script(text: Optional[str]) -> Optional[str]:
    """The script most of a line's letters are written in; None for a line without letters."""
    if not text:
        return None
    if text.isascii():
        return "LATIN" if any(ch.isalpha() for ch in text) else None
    counts = Counter(s for s in map(letter_script, text) if s)
    return counts.most_common(1)[0][0] if counts else None


def script_parts(text: str) -> tuple[str, ...]:
    """A cue as the lines it shows in two scripts, in order: a line and its translation under it ('你为什么要这样对我？
    Why would you do this to me?'); the text alone where it holds one script, or where its scripts interleave over
    MAX_MISPLACED of its letters (a Latin name inside a Chinese line)."""
    if text.isascii():
        return (text,)
    letters = [(i, s) for i, s in enumerate(map(letter_script, text)) if s]
    counts = Counter(s for _, s in letters)
    if len(counts) < 2:
        return (text,)
    first = letters[0][1]
    other = next(s for s, _ in counts.most_common() if s != first)
    # the cut before letter k that leaves most letters on their side: `first` before it, `other` after
    after = sum(s == other for _, s in letters)
    best, cut, before = after, 0, 0
    for k, (_, s) in enumerate(letters):
        before += s == first
        after -= s == other
        if before + after > best:
            best, cut = before + after, k + 1
    if cut in (0, len(letters)) or len(letters) - best > MAX_MISPLACED * len(letters):
        return (text,)
    head, tail = text[:letters[cut][0]].strip(), text[letters[cut][0]:].strip()
    return (head, tail) if _a_line(head, first) and _a_line(tail, other) else (text,)


def _a_line(part: str, script: str) -> bool:
    """Whether one part of a cue in `script` is a line of its own (MIN_PART_LETTERS, two words outside CJK)."""
    letters = sum(ch.isalpha() for ch in part)
    if script in MIN_PART_LETTERS:
        return letters >= MIN_PART_LETTERS[script]
    return letters >= MIN_PART_LETTERS_ELSE and len(part.split()) >= 2


def film_founds(texts: Sequence[Optional[str]], languages: Sequence[str]) -> list[Optional[str]]:
    """Per line of one film, the language its film's lines identify (detect_language): those of its script where
    the film's lines are in two scripts or more with MIN_LETTERS letters each (a Chinese track whose every cue
    carries its English translation; an English film with a Russian scene), else all of them. Before 2026-12-07 a
    bilingual track was one language: Chinese, its English lines unread."""
    texts = list(texts)
    scripts = [main_script(t) for t in texts]
    letters: Counter = Counter()
    for t, s in zip(texts, scripts):
        if s:
            letters[s] += sum(ch.isalpha() for ch in t)
    groups = [s for s, n in letters.items() if n >= MIN_LETTERS]
    found = detect_language(texts, languages)
    if len(groups) < 2:
        return [found] * len(texts)
    by_script = {g: detect_language([t for t, s in zip(texts, scripts) if s == g], languages) for g in groups}
    # a script's lines too few or unsure to tell take the film's: a Japanese film's romaji, a Russian film's names
    # (before, unknown, so read by the English text path; found in review)
    return [by_script.get(s) or found for s in scripts]


def _identified(text: Optional[str], found: Optional[str], languages: Sequence[str]) -> Optional[str]:
    """A line's language where its film's lines identify it (`found`, detect_language): its own where, alone, it is
    unlike every language read (line_unlike), else found. The one rule of label_cues and unread_languages."""
    return line_unlike(text, None if found == UNIDENTIFIED else found, languages) or found


def clip_language(languages: Sequence[Optional[str]], text_languages: Sequence[str]) -> Optional[str]:
    """The language of a clip whose words are those of lines in these languages (in order): the first the text path
    (reading `text_languages`) does not read, where one is not, so that the clip is not read (its words are not all
    of a language the text path learnt); else the first known. Since 2026-12-07, when a line of another language
    among a film's took its own (line_unlike): a clip joining it with a read line took its first line's language."""
    return next((lang for lang in languages if not reads(lang, text_languages)), None) or \
        next((lang for lang in languages if lang), None)


def line_unlike(text: Optional[str], language: Optional[str], languages: Sequence[str]) -> Optional[str]:
    """The language of a line whose `language` (its film's, its tag's) the text path reads but which, alone, is
    unlike every one of `languages` (MIN_LINE_LETTERS, LINE_PROBABILITY): the identifier's answer, UNIDENTIFIED
    where it is unsure; None for any other line (too short to tell, like a read language, or not read anyway)."""
    if not languages or not text or not reads(language, languages):
        return None
    if sum(ch.isalpha() for ch in text) < MIN_LINE_LETTERS:
        return None
    ranked = _identifier().rank(text)
    read = _read_codes(tuple(languages))
    if sum(p for code, p in ranked if code in read) >= LINE_PROBABILITY:
        return None
    code, probability = ranked[0]
    return line_language(code) if probability >= MIN_PROBABILITY else UNIDENTIFIED


@functools.cache
def _read_codes(languages: tuple) -> frozenset:
    """The identifier's languages that a text path reading `languages` reads."""
    return frozenset(code for code in _identifier().nb_classes if reads(code, languages))


class IdentifierUnavailable(RuntimeError):
    """The language identifier did not load (py3langid unpacks its model to a temporary file: a full or refused temp
    folder, a file size limit): no line's language can be told. Before 2026-12-07 a film's lines were then read as of
    unknown language, French lines by the English text model (joy 0.90, grounded), and committed so for good (found in
    review); now the film fails where its subtitles are read, and the next run tries again."""


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    try:
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    except Exception as exc:  # (not cached: the next call tries again)
        raise IdentifierUnavailable(f"the language identifier did not load ({type(exc).__name__}: {exc})") from exc


def load() -> None:
    """Load the language identifier now (0.5 s, once per process) rather than on the first untagged film."""
    _identifier()


def detect_language(texts: Iterable[str], languages: Sequence[str] = TEXT_LANGUAGES) -> Optional[str]:
    """The ISO 639-1 language of these lines taken together; None when they hold fewer than MIN_LETTERS letters, or
    the identifier's probability is below MIN_PROBABILITY and its likeliest language is one of `languages` (the
    text path's; () = any) or the lines hold fewer than MIN_UNIDENTIFIED_LETTERS; else, below it, UNIDENTIFIED."""
    text = " ".join(t for t in texts if t)
    letters = sum(ch.isalpha() for ch in text)
    if letters < MIN_LETTERS:
        return None
    code, probability = _identifier().classify(text)
    if probability >= MIN_PROBABILITY:
        return line_language(code)
    guess = line_language(code)
    if not languages or letters < MIN_UNIDENTIFIED_LETTERS or (guess is not None and reads(guess, languages)):
        return None
    return UNIDENTIFIED


def label_cues(cues: Sequence, languages: Sequence[str] = TEXT_LANGUAGES, notes: Optional[list] = None) -> tuple:
    """Cues with their language as a code (line_language): the language identified from all of them together (from
    the lines of their script, where they are in several: film_founds), else the tag they carry (sidecar tags are
    often not languages: `film.sdh.srt`, `film.forced.srt`), else None. Lines the identifier leaves UNIDENTIFIED keep
    a tag they carry (a track's, Whisper's): it names the language, the identifier only failed to. A line of a film
    identified (or of unknown language, no tag) that is unlike every language the text path reads takes its own
    (line_unlike); a tag that decides is not second-guessed line by line (romanised Hindi tagged `hi`, a language
    the identifier has no class for).

    A bilingual track (BILINGUAL_SHARE of its cues a line and its translation in another script) is read line by
    line: a cue keeps the line the text path reads where it reads one of the two; and a line it does not read shown
    at the times of a read line in another script (TWIN_S: ASS tracks' translation events) goes as its translation.
    Each such drop is counted in a message appended to `notes`."""
    cues = list(cues)
    parts = [script_parts(c.text) for c in cues]
    worded = sum(1 for c in cues if main_script(c.text))
    if worded < 2 or sum(len(p) == 2 for p in parts) < BILINGUAL_SHARE * worded:
        parts = [(c.text,) for c in cues]
    units = [(c, text) for c, p in zip(cues, parts) for text in p]
    founds = film_founds([text for _, text in units], languages)
    labelled = iter([_labelled_line(c, text, found, languages) for (c, text), found in zip(units, founds)])
    out, dropped = [], []
    for c, p in zip(cues, parts):
        lines = [next(labelled) for _ in p]
        read = [line for line in lines if reads(line.language, languages)]
        if len(lines) == 2 and len(read) == 1:
            out.append(read[0])
            dropped += [line for line in lines if line is not read[0]]
        elif len(lines) == 1:
            out.append(lines[0])
        else:
            out.append(dataclasses.replace(c, language=clip_language([line.language for line in lines], languages)))
    out, twins = _without_twins(out, languages)
    if notes is not None and (dropped or twins):
        codes = sorted({str(line_language(c.language)) for c in dropped + twins})
        notes.append(f"bilingual subtitles: {len(dropped) + len(twins)} lines in {', '.join(codes)}, which the text "
                     "path does not read, are shown with a line it reads at the same time: taken for its "
                     "translation, they are left out and the read line stands for them")
    return tuple(out)


def _labelled_line(cue, text: str, found: Optional[str], languages: Sequence[str]):
    """One line of a track (a cue, or one of its two lines) with its language, given what its film's lines
    identify (`found`): label_cues's rule."""
    tag = line_language(cue.language)
    if found not in (None, UNIDENTIFIED) or tag is None:  # identified with the film's lines (or unknown)
        return dataclasses.replace(cue, text=text, language=_identified(text, found, languages))
    return dataclasses.replace(cue, text=text, language=tag)  # a tag names the language where the identifier cannot


def _without_twins(cues: list, languages: Sequence[str]) -> tuple[list, list]:
    """Cues without those the text path does not read that another cue, read and in another script, shows at the
    same times (TWIN_S); and those dropped."""
    if not languages:
        return cues, []
    scripts = [main_script(c.text) for c in cues]
    starts = sorted((c.start_s, i) for i, c in enumerate(cues) if reads(c.language, languages))
    keys = [s for s, _ in starts]
    kept, twins = [], []
    for c, script in zip(cues, scripts):
        twin = False
        if c.text and not reads(c.language, languages):
            lo, hi = bisect.bisect_left(keys, c.start_s - TWIN_S), bisect.bisect_right(keys, c.start_s + TWIN_S)
            twin = any(abs(cues[i].end_s - c.end_s) <= TWIN_S and scripts[i] != script for _, i in starts[lo:hi])
        (twins if twin else kept).append(c)
    return kept, twins


def likely_script(tag: Optional[str]) -> Optional[str]:
    """The script a language is most often written in (ISO 15924: 'Latn', 'Cyrl', 'Hans', ...); None for no tag."""
    import langcodes

    code = language_code(tag)
    return langcodes.Language.get(code).maximize().script if code else None
