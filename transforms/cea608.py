"""A CEA-608 caption decoder for caption channel 1 (CC1, the programme's own language), turning the byte pairs that
caption encoders send (one pair per frame at 29.97 fps) into dialogue lines. The pairs come from Scenarist SCC
files (transforms/scc.py) or from the video stream itself (transforms/video_captions.py: ATSC A53 captions).

    pop-on     RCL, rows of text into the hidden memory, EOC: shown from EOC until EDM or the next EOC
    roll-up    RU2-4, text straight onto the screen: a line from its first character to its CR
    paint-on   RDC, text straight onto the screen: a caption from its first character until EDM

Preamble address codes start rows (a caption's rows are joined with spaces), mid-row codes show as a space,
special and extended characters (accents, the music note) are mapped, a control code sent twice counts once
(only its immediate second copy is dropped: a special character sent twice, twice over, is two characters), a
channel 2 command sends what follows to CC2 until CC1's next, and TR / RTD (text restart, resume text display)
send what follows to the text service T1, not a caption, until the next RCL, RU or RDC. The 608 convention `>>`
(a new speaker) is dropped from the text; what else is not dialogue ([MUSIC], speaker labels) goes as for every
subtitle (transforms.dialogue)."""
from __future__ import annotations

import re
from typing import Optional

_SPEAKER = re.compile(r"^\s*>{2,3}\s*|\s*>{2,3}\s*")

# the 608 character set where it differs from ASCII
_BASIC = {0x2A: "á", 0x5C: "é", 0x5E: "í", 0x5F: "ó", 0x60: "ú", 0x7B: "ç", 0x7C: "÷", 0x7D: "Ñ", 0x7E: "ñ",
          0x7F: "█"}
# special characters: 0x11 / 0x19, then 0x30-0x3F
_SPECIAL = "®°½¿™¢£♪à èâêîôû"
# extended characters: 0x12 / 0x1A and 0x13 / 0x1B, then 0x20-0x3F; each replaces the character before it
_EXTENDED_12 = "ÁÉÓÚÜü‘¡*’—©℠•“”ÀÂÇÈÊËëÎÏïÔÙùÛ«»"
_EXTENDED_13 = "ÃãÍÌìÒòÕõ{}\\^_|~ÄäÖöß¥¤│ÅåØø┌┐└┘"
# preamble address codes: first byte (channel bit cleared) -> the rows of its low and high second-byte halves
_PAC_ROWS = {0x11: (1, 2), 0x12: (3, 4), 0x15: (5, 6), 0x16: (7, 8), 0x17: (9, 10), 0x10: (11, 11), 0x13: (12, 13),
             0x14: (14, 15)}


class Cea608Decoder:
    """CEA-608 caption channel 1 as (start_s, end_s, text) lines."""

    def __init__(self):
        self.lines: list[tuple[float, float, str]] = []
        self.mode = "pop"                       # pop | roll | paint
        self.hidden: dict[int, str] = {}        # row -> text, the pop-on caption being loaded
        self.shown: dict[int, str] = {}         # row -> text on screen
        self.shown_since: Optional[float] = None
        self.row = 15
        self.ours = True                        # the last command was CC1's
        self.text = False                       # TR / RTD: the text service (T1) is sent, not captions
        self.previous: Optional[tuple[int, int]] = None

    def _memory(self) -> dict[int, str]:
        return self.hidden if self.mode == "pop" else self.shown

    def _put(self, text: str, t: float) -> None:
        """Characters at the cursor: into the caption memory being written, nowhere in text mode."""
        if self.text:  # T1's characters (station name, programme guide) are not dialogue
            return
        memory = self._memory()
        if self.mode != "pop" and self.shown_since is None:
            self.shown_since = t
        memory[self.row] = memory.get(self.row, "") + text

    def finish(self, t: float) -> list[tuple[float, float, str]]:
        """The lines, once the pairs are all in: a caption still on screen at t ends there (at least 2 s shown)."""
        self._end_shown(max(t, (self.shown_since or 0.0) + 2.0))
        return self.lines

    def _end_shown(self, t: float) -> None:
        """What is on screen stops being shown at t: it is a line."""
        text = " ".join(self.shown[r] for r in sorted(self.shown))
        if self.shown_since is not None and text.strip():
            self.lines.append((self.shown_since, t, _SPEAKER.sub(" ", text).strip()))
        self.shown, self.shown_since = {}, None

    def word(self, b1: int, b2: int, t: float) -> None:
        """One byte pair (parity bits ignored) received at t."""
        b1, b2 = b1 & 0x7F, b2 & 0x7F
        if b1 == 0 and b2 == 0:
            return
        if 0x10 <= b1 <= 0x1F:
            repeated = (b1, b2) == self.previous
            # control codes are sent twice so that one survives a transmission error: only the copy right after
            # is dropped, so a third is a new code (before 2026-12-06 "♪♪" sent as four pairs read as one "♪")
            self.previous = None if repeated else (b1, b2)
            if repeated:
                return
            self.ours = b1 < 0x18
            if self.ours:
                self._command(b1, b2, t)
            return
        self.previous = None
        if self.ours and b1 >= 0x20:
            self._put("".join(_BASIC.get(b, chr(b)) for b in (b1, b2) if b >= 0x20), t)

    def _command(self, b1: int, b2: int, t: float) -> None:
        """A CC1 control code: a caption mode, an edit of the memories, a character or a row."""
        if b1 in (0x14, 0x15) and 0x20 <= b2 <= 0x2F:  # miscellaneous control codes
            self._miscellaneous(b2, t)
            return
        if self.text:  # a row or a character of the text service, not of a caption
            return
        base = b1 & 0x17
        if base == 0x11 and 0x20 <= b2 <= 0x2F:            # mid-row code: shown as a space
            self._put(" ", t)
        elif base == 0x11 and 0x30 <= b2 <= 0x3F:          # special character
            self._put(_SPECIAL[b2 - 0x30], t)
        elif base in (0x12, 0x13) and 0x20 <= b2 <= 0x3F:  # extended character: replaces the one before
            memory = self._memory()
            memory[self.row] = memory.get(self.row, "")[:-1]
            self._put((_EXTENDED_12 if base == 0x12 else _EXTENDED_13)[b2 - 0x20], t)
        elif base in _PAC_ROWS and b2 >= 0x40:              # preamble address code: a row (and indent) starts
            self.row = _PAC_ROWS[base][1 if b2 & 0x20 else 0]
            memory = self._memory()
            if memory.get(self.row):
                memory[self.row] += " "
        # 0x17 / 0x1F 0x21-0x23 (tab offsets) and the rest only move the cursor or style the text

    def _miscellaneous(self, b2: int, t: float) -> None:
        """A miscellaneous control code (0x14 / 0x15, then 0x20-0x2F): modes, memories, the cursor."""
        if b2 in (0x20, 0x25, 0x26, 0x27, 0x29):           # a caption mode: the text service's turn is over
            self.text = False
        if b2 == 0x20:                                     # RCL: pop-on, load the hidden memory
            self.mode = "pop"
        elif b2 in (0x25, 0x26, 0x27):                     # RU2-4: roll-up
            if self.mode != "roll":
                self._end_shown(t)
            self.mode = "roll"
        elif b2 == 0x29:                                   # RDC: paint-on
            self.mode = "paint"
        elif b2 in (0x2A, 0x2B):                           # TR, RTD: text mode (before 2026-12-06 read as captions)
            self.text = True
        elif b2 == 0x2C:                                   # EDM: clear the screen
            self._end_shown(t)
        elif b2 == 0x2D and self.mode == "roll" and not self.text:  # CR: the line rolls up, a new one starts
            self._end_shown(t)
        elif b2 == 0x2E:                                   # ENM: clear the hidden memory
            self.hidden = {}
        elif b2 == 0x2F:                                   # EOC: the loaded caption is shown
            self._end_shown(t)
            self.shown, self.hidden, self.shown_since = self.hidden, {}, t
            if not self.shown:
                self.shown_since = None
        elif b2 == 0x21 and not self.text:                 # BS
            memory = self._memory()
            memory[self.row] = memory.get(self.row, "")[:-1]
        # DER (0x24: delete to the end of the row, the cursor is at its end) changes nothing here
