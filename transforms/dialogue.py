"""Which text of a subtitle cue, a recognised segment or a labelled line is dialogue: one rule for all of them
(transforms.subtitles, transforms.transcribe, training.datasets), so the text path reads in a film what it read in
training."""
from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")
# The rule's version: part of the pipeline's config hash (a change redoes a catalogue's films) and of the training
# feature caches' keys. 2 (2026-12-03): SDH sound descriptions, music cues and speaker labels are not dialogue.
DIALOGUE_RULE = "2"
_SOUND = re.compile(r"\[[^\]]*\]|\([^)]*\)")  # SDH sound descriptions: [door slams], (SIGHS)
_MUSIC = re.compile("[\u266a\u266b\u266c]")  # music notes: a song's lyrics or the score
# A speaker label at the start of the cue or of a dash-led line: 'JOHN:', 'MAN #2:', '- DR. SMITH:'
_SPEAKER = re.compile(r"(^|[-\u2013\u2014]\s*)[A-Z][A-Z0-9#'.\- ]*[A-Z0-9]:(?=\s|$)")


def dialogue_text(line: str) -> str:
    """A cleaned cue's spoken words: subtitles for the deaf and hard of hearing (SDH) also carry sound
    descriptions ('[door slams]', '(SIGHS)'), music ('♪ ♪', sung lyrics) and speaker labels ('JOHN:'). The text
    path learnt transcribed dialogue (2 of MELD's 9,989 train lines carry a stage direction) and reads them as confident `neutral` ('♪ ♪' 0.61,
    '[MUSIC PLAYING]' 0.57, '...' 0.55): a label grounded in no dialogue. Descriptions and labels are removed; a
    cue with a music note is a song or a score, not a line; '' when no word or number is left (not a line)."""
    if _MUSIC.search(line):
        return ""
    line = _SOUND.sub(" ", line)
    if any(ch.islower() for ch in line):  # in an all-caps cue a label cannot be told from the line ('I SAID: NO.')
        line = _SPEAKER.sub(lambda m: m.group(1), line)
    line = _SPACES.sub(" ", line).strip()
    return line if any(ch.isalnum() for ch in line) else ""
