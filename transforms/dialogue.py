"""Which text of a subtitle cue, a recognised segment or a labelled line is dialogue: one rule for all of them
(transforms.subtitles, transforms.transcribe, training.datasets), so the text path reads in a film what it read in
training."""
from __future__ import annotations

import html
import re
import unicodedata

_SPACES = re.compile(r"\s+")
_HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|<\s*/\s*[a-zA-Z]*\s*>")
HTML_BREAK = re.compile(r"<\s*(?:br|/?(?:div|p))\b[^>]*>", re.IGNORECASE)  # a line or block break: a space
_ASS_TAG = re.compile(r"\{\\[^}]*\}")
_VTT_TIMESTAMP_TAG = re.compile(r"<\d{1,2}:\d{2}(:\d{2})?\.\d{3}>")
# ASS drawing mode: from a tag that sets \p1 (or more) to one that sets \p0 (or the end), the text is a vector shape
_ASS_DRAWING = re.compile(r"\{[^}]*\\p[1-9][^}]*\}.*?(?=\{[^}]*\\p0[^}]*\}|$)", re.S)
# The rule's version: part of the pipeline's config hash (a change redoes a catalogue's films) and of the training
# feature caches' keys. 2 (2026-12-03): SDH sound descriptions, music cues and speaker labels are not dialogue. 3
# (2026-12-06): a label after a sound description ('[door slams] JOHN:'), with a description of its own ('JOHN (V.O.):')
# or after a sentence of the cue ('Where were you? MARY: Out.', two lines joined) is one too. 4 (2026-12-06, the same
# day): a song wrapped in '#' or '¶' is no line, a dash-led turn that held only a description goes with its dash. 5
# (2026-12-07): the notes ♩ 🎵 🎶 🎼 mark songs too, a sung dash turn whose notes close goes alone (its spoken
# neighbour stays), 'OK:' and 'PS:' are no speakers; '{laughs}' is a description; a cue that is only a speaker label
# in capitals ('JOHN:', 'MAN #2:'), a subtitler's credit ('Subtitles by ...'), a subtitle site's advert or address
# ('www.opensubtitles.org'), or the closing card 'THE END' is no line; and a line's language may be one without a
# two-letter code (transforms.language.line_language). 6 (2026-12-07, forty-fourth session): lines the language
# identifier cannot name whose likeliest language is none the text path reads are not read
# (transforms.language.UNIDENTIFIED: romanised Hindi was read as English). 7 (2026-12-07, forty-fifth session): a line
# of another language among a film's is not read (transforms.language.line_unlike); a cue or turn that is an action in
# asterisks ('*laughs*'), a song in tildes ('~ Happy birthday ~') or a bare sound word ('SCREAMING', 'Applause') is no
# line; the captions' speaker change '>>' goes; mis-decoded Windows-1252 punctuation ('\x92') is read as meant.
# 8 (2026-12-07, forty-sixth session): '<br>' and block tags in a cue are a space ('you<br>going' was 'yougoing'); in
# SubRip / WebVTT sidecars a CR CR LF line end is one, a bare cue number right before its timing line is no text, and
# a timing line with a hand-typed arrow ('—>', '=>', '-- >') is one (each put words or numbers into the cue before);
# a line shown over ten minutes across later lines ends where the next starts (transforms.subtitles._end_runaways);
# ASS events are read in the order their Format line names. 9 (2026-12-07, forty-seventh session): a film's lines in
# several scripts are identified by script, and a bilingual track's line that is not read beside its read translation
# goes (transforms.language.film_founds, label_cues); a sidecar is read as the format its text says it is in
# (an ASS track named .srt), not its extension; subtitles that leave a third of a film without a line have its speech
# transcribed there under --transcribe auto (transforms.subtitles.uncovered).
DIALOGUE_RULE = "9"
_SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)|\{[^}]*[A-Za-z][^}]*\}")  # SDH descriptions: [door slams], (SIGHS), {laughs}
_MUSIC = re.compile("[\u2669\u266a\u266b\u266c\U0001f3b5\U0001f3b6\U0001f3bc]")  # notes: lyrics or the score
# A cue that is only a label in capitals, of one or two words: 'JOHN:', 'MAN #2:', 'DR. SMITH:' (not 'Listen:', nor
# an all-caps caption's 'AND THE WINNER IS:')
_LABEL_ONLY = re.compile(r"[-\u2013\u2014]?\s*[A-Z][A-Z0-9#'.\-]*(?: [A-Z0-9#'.\-]+)?\s?:")
# Not the film's words (the whole cue): the subtitler's credit, a name after 'by' and no sentence ('Translated by
# whom?', 'Encoded by Enigma. Unbreakable.' are lines); an address alone; a subtitle site's advert or address
# anywhere (a line that names a website is a line: 'Go to www.example.com'); the closing card, without punctuation
_CREDIT = (r"(?:english\s+)?(?:subtitles?|subtitled|captions?|captioned|captioning|transcripts?|transcribed"
           r"|translations?|translated|sync(?:ed|hed)?|synchroni[sz]ed|corrections?|corrected|ripped|encoded"
           r"|resync(?:ed)?)(?:\s+(?:and|&)\s+\w+)?\s+(?:made\s+possible\s+)?by\s*:?\s*[^.!?,:;]{1,60}\.?")
_SUBTITLE_SITE = (r".*(?:opensubtitles|osdb\.link|yify|addic7ed|podnapisi|subscene|advertise your product"
                  r"|become vip member|rate this subtitle|downloaded from).*")
_NOT_SPOKEN = re.compile(rf"(?:{_CREDIT}|\W*(?:https?://|www\.)\S+|{_SUBTITLE_SITE}|(?-i:THE\s+END|The\s+End))",
                         re.I | re.S)
# A song written where the font had no note: the whole cue wrapped in '#' or '¶' ('# Happy birthday #'), not
# '#1 fan'; since 2026-12-07 also in '~' around two words or more ('~ Happy birthday to you ~', before read: joy 0.28;
# not '~Onii-chan~', a line's playful tone)
_STAND_IN_SONG = re.compile(r"[#\u00b6].*[#\u00b6]|~\s*[^~\s]+(?:\s+[^~\s]+)+\s*~", re.S)
# An action or sound in asterisks, the whole cue or turn, led by a verb in the third person or '-ing' ('*laughs*',
# '- *screams*', '*SIGHS HEAVILY*', '*crying*'): before 2026-12-07 read, and '*laughs*' over text cards was text
# neutral 0.43, a grounded label with no dialogue. A line in asterisks for emphasis stays ('*I love you*', '*what
# the fuck*'), as does emphasis inside a line ('I *so* mean it'); of the labelled text sets' 68,439 lines, 12 are such
# an action ('*whistles innocently*', '*cries in south america*')
_ACTION = re.compile(r"\*\s*(?:[a-z]{2,}(?:s|ing)|[A-Z]{2,}(?:S|ING))\b[^*]{0,50}\*[.!?]?", re.S)
# A cue that is only a sound written without brackets ('SCREAMING', 'Applause', 'MUSIC PLAYING'): never one of the
# labelled text sets' lines
_SOUND_WORD = re.compile(
    r"(?:music|applause|laughter|laughing|laughs|screaming|screams|gunfire|gunshots?|explosions?|sighs|sighing|gasps"
    r"|gasping|groans|groaning|sobbing|sobs|crying|coughing|coughs|chuckles|chuckling|giggling|inaudible|indistinct"
    r"|chattering|chatter)(?: (?:playing|continues|fades|intensifies|stops|softly|loudly|chattering|chatter))?\.?",
    re.I)
# The speaker change of broadcast captions (a CEA-608 convention, kept in sidecars made from them): '>> Hi. >> Hey.'
_CHEVRONS = re.compile(r"(?:^|(?<=\s))>{2,3}(?=\s|$)")
# Windows-1252 punctuation read as Latin-1 (a subtitle or a labelled set saved by the wrong program): as meant
_CP1252 = str.maketrans({"\x92": "'", "\x91": "'", "\x93": '"', "\x94": '"', "\x96": "-", "\x97": "-",
                         "\x85": "..."})
# A speaker's turn: a dash at the cue's start or after a space, up to the next one ('- Hey. - Hi.', '-Where? -Home.')
_TURN = re.compile(r"(?:^|(?<=\s))[-\u2013\u2014]+(?:(?!\s[-\u2013\u2014]).)*", re.S)
# A speaker label at the start of the cue, of a dash-led line or of a sentence (a cue's second line, joined):
# 'JOHN:', 'MAN #2:', '- DR. SMITH:', 'Where were you? MARY:'; 'JOHN (V.O.):' is 'JOHN :' once the description goes
_TITLE = "".join(rf"(?<!\b{t})" for t in ("Mr", "Ms", "Mrs", "Dr", "St", "Jr", "Sr"))  # 'Dr. SMITH:' ends no sentence
# Words written before a colon that are not a speaker: 'OK: let's go.', 'PS: I love you.', 'NB:'
_NOT_A_NAME = r"(?!(?:OK|PS|P\.S|NB|FYI)\s?:)"
_SPEAKER = re.compile(
    rf"(^|[-\u2013\u2014]\s*|[!?\u2026]\s+|{_TITLE}\.\s+){_NOT_A_NAME}[A-Z][A-Z0-9#'.\- ]*[A-Z0-9]\s?:(?=\s|$)")


def dialogue_text(line: str) -> str:
    """A cleaned cue's spoken words: subtitles for the deaf and hard of hearing (SDH) also carry sound
    descriptions ('[door slams]', '(SIGHS)'), music ('♪ ♪', sung lyrics) and speaker labels ('JOHN:'). The text
    path learnt transcribed dialogue (2 of MELD's 9,989 train lines carry a stage direction) and reads them as confident `neutral` ('♪ ♪' 0.61,
    '[MUSIC PLAYING]' 0.57, '...' 0.55): a label grounded in no dialogue. Descriptions and labels are removed; a
    cue with a music note, or wrapped in the '#' or '¶' files write for one, is a song or a score, not a line; a
    dash-led turn left with nothing said goes with its dash; '' when no word or number is left (not a line). Before
    2026-12-06 '# Happy birthday to you #' was a line and '- [gasps]\\n- What?' read '- - What?'."""
    line = _CHEVRONS.sub(" ", line).strip()
    if _MUSIC.search(line):  # a sung turn beside a spoken one goes alone ('- ♪ Happy birthday ♪ - Stop singing!')
        sung = [m.group(0) for m in _TURN.finditer(line) if _MUSIC.search(m.group(0))]
        if not all(_MUSIC.search(t.rstrip(" \t\n,.!?-\u2013\u2014")[-1:]) for t in sung):
            return ""  # a song going on past its turn ('- ♪ Happy birthday to you, / - happy birthday, dear John')
        line = _TURN.sub(lambda m: "" if _MUSIC.search(m.group(0)) else m.group(0), line)
        if _MUSIC.search(line):  # a note outside any dash turn: the cue is a song or the score
            return ""
    labels = any(ch.islower() for ch in _SOUND.sub(" ", line))  # all caps: no label to tell ('I SAID: NO.')
    line = _spoken(_TURN.sub(lambda m: _kept_turn(m.group(0), labels), line), labels)
    if _STAND_IN_SONG.fullmatch(line) or _LABEL_ONLY.fullmatch(line) or _NOT_SPOKEN.fullmatch(line) or _a_sound(line):
        return ""
    return line if any(ch.isalnum() for ch in line) else ""


def _spoken(text: str, labels: bool) -> str:
    """text without its sound descriptions and (labels: the cue has lower case) its speaker labels."""
    text = _SPACES.sub(" ", _SOUND.sub(" ", text)).strip()  # a label the description stood before starts the cue now
    if labels:
        text = _SPEAKER.sub(lambda m: m.group(1), text)
    return _SPACES.sub(" ", text).strip()


def _kept_turn(turn: str, labels: bool) -> str:
    """A dash-led turn, or '' where only a description or label was said in it ('- [gasps]', '- MARY: [screams]'):
    its dash alone would read as a line's ('- - What?'). A turn that was empty as written ('this- -') stays."""
    said = _spoken(turn, labels)
    emptied = said != _SPACES.sub(" ", turn).strip() and not said.lstrip("-\u2013\u2014 ")  # '- 😍' is said
    return "" if emptied or _a_sound(said.lstrip("-\u2013\u2014 ")) else turn


def _a_sound(text: str) -> bool:
    """Whether a cue or a turn's words are only an action or a sound written without brackets (_ACTION, _SOUND_WORD)."""
    return bool(_ACTION.fullmatch(text) or _SOUND_WORD.fullmatch(text))


def clean_text(text: str) -> str:
    """Strip HTML/ASS/VTT tags and ASS drawings, turn ASS line breaks into spaces, read character references
    (`&amp;`, `&lt;`, `&nbsp;`: WebVTT's and many SRT files'), drop invisible format characters (`&lrm;`, zero-width
    spaces), join lines. Before 2026-12-05 `&amp;` reached the text model as it is, and an ASS sign drawn with
    `{\\p1}m 0 0 l 100 0 ...` became a line of dialogue. Windows-1252 punctuation read as Latin-1 ('\\x92') is read
    as meant (before 2026-12-07 only in the labelled sets' reader)."""
    text = _ASS_DRAWING.sub("", text)
    text = text.replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    text = _ASS_TAG.sub("", text)
    text = _VTT_TIMESTAMP_TAG.sub("", text)
    text = html.unescape(_HTML_TAG.sub("", HTML_BREAK.sub(" ", text)))
    text = text.translate(_CP1252)
    if not text.isprintable():  # (a format character is not printable: most lines skip the walk)
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return _SPACES.sub(" ", text).strip()
