"""Clip planning: windows, subtitle cues (merge, split, gaps, overlaps, context), shots."""
from pathlib import Path

import pytest

from transforms.elements import Cue
from model.featurize import sample_times
from transforms.segment import dialogue_context, plan_shots, plan_subtitles, plan_windows, split_span
from transforms.subtitles import decode_subtitle_bytes, parse_subtitles

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"


def assert_covers(specs, duration):
    assert specs[0].start_s == pytest.approx(0.0)
    assert specs[-1].end_s == pytest.approx(duration)
    for a, b in zip(specs, specs[1:]):
        assert b.start_s == pytest.approx(a.end_s), (a, b)
    assert [s.clip_index for s in specs] == list(range(len(specs)))


def test_windows_cover_and_absorb_a_short_tail():
    specs = plan_windows(10.3, 4.0, min_clip_s=1.0)
    assert [(s.start_s, s.end_s) for s in specs] == [(0.0, 4.0), (4.0, 8.0), (8.0, 10.3)]
    assert [(s.start_s, s.end_s) for s in plan_windows(8.5, 4.0, min_clip_s=1.0)] == [(0.0, 4.0), (4.0, 8.5)]
    assert_covers(specs, 10.3)
    assert all(s.segment_source == "window" and s.text is None for s in specs)
    hopped = plan_windows(10.0, 4.0, hop_s=2.0)
    assert [s.start_s for s in hopped] == [0.0, 2.0, 4.0, 6.0] and hopped[-1].end_s == 10.0


def test_subtitle_plan_covers_film_merges_short_and_splits_long():
    cues = [Cue(1.0, 1.3, "Hi."), Cue(1.5, 3.0, "How are you?"),  # short cue merged with its neighbour
            Cue(10.0, 30.0, " ".join(f"w{i}" for i in range(40))),  # 20 s monologue: split in 3
            Cue(40.0, 41.5, "Bye")]
    specs = plan_subtitles(cues, 50.0, min_clip_s=1.0, max_clip_s=8.0, window_s=4.0)
    assert_covers(specs, 50.0)
    dialogue = [s for s in specs if s.text]
    assert dialogue[0].text == "Hi. How are you?"
    long = [s for s in dialogue if s.text.startswith("w") or " w" in s.text]
    assert len(long) == 3 and all(s.end_s - s.start_s <= 8.0 + 1e-6 for s in long)
    assert " ".join(s.text for s in long).split() == [f"w{i}" for i in range(40)]
    assert all(s.text_source == "subtitle" for s in dialogue)
    gaps = [s for s in specs if not s.text]
    assert gaps and all(s.segment_source == "window" and s.text_source == "none" for s in gaps)
    assert all(s.end_s - s.start_s >= 1.0 - 1e-6 for s in specs)


def test_a_cut_line_shares_its_words_out_by_time_as_windows_do():
    """The pieces of a long line read the words said in them (segment.cue_words + assign_words, the rule of windows
    and shots): a piece in which no word is said has no text, not a copy of the line, each piece reads the words
    a window over its span reads, and a line said inside the long one joins the piece it is said in."""
    from transforms.segment import cue_words
    from transforms.transcribe import assign_words
    short = plan_subtitles([Cue(0.0, 17.0, "No.")], 17.0, max_clip_s=8.0)
    assert [s.text for s in short] == [None, "No.", None]  # was "No." three times
    assert [s.text_source for s in short] == ["none", "subtitle", "none"]
    # a long line reads, piece by piece, what windows over the same spans read
    line = Cue(2.0, 20.0, "one two three four five six seven")
    cut = plan_subtitles([line], 20.0, max_clip_s=8.0)
    assert len(cut) == 4 and cut[0].text is None  # the 2 s before the line, then the line in 3 pieces
    assert [s.text for s in cut[1:]] == assign_words(cue_words(line), [(s.start_s, s.end_s) for s in cut[1:]])
    assert " ".join(s.text for s in cut[1:]) == line.text
    # a line said inside a long one (two speakers at once, a sign over a speech) joins the piece it is said in, also
    # a piece that had no words of its own (it read 'None Hi there')
    inside = plan_subtitles([Cue(0.0, 17.0, "No."), Cue(3.0, 4.0, "Wait"), Cue(12.0, 14.0, "Hi there")], 17.0,
                            max_clip_s=8.0)
    assert [(s.text, s.text_source) for s in inside] == [("Wait", "subtitle"), ("No.", "subtitle"),
                                                         ("Hi there", "subtitle")]


def test_overlapping_cues_and_context():
    cues = [Cue(0.0, 3.0, "A"), Cue(2.0, 4.0, "B"), Cue(3.5, 6.0, "C"), Cue(20.0, 22.0, "D")]
    specs = plan_subtitles(cues, 22.0, max_clip_s=4.0)
    assert_covers(specs, 22.0)
    text = " ".join(s.text for s in specs if s.text)
    assert all(c in text.split() for c in "ABCD")  # every line is kept exactly once
    assert len(text.split()) == 4
    last = dialogue_context([s.text for s in specs], 2)[-1]
    assert specs[-1].text == "D" and len(last) == 2 and last[-1] in ("C", "B C")


def test_dialogue_context_is_the_distinct_lines_before():
    texts = ["A", None, "B", "B", "C", "", "D"]  # clips in time order; None / '' = a clip without a line
    ctx = dialogue_context(texts, 2)
    assert ctx[:3] == [(), ("A",), ("A",)]  # a clip without a line adds nothing
    assert ctx[3] == ("A", "B") and ctx[4] == ("A", "B")  # a line said twice in a row (a cue cut in two) counts once
    assert ctx[6] == ("B", "C")
    assert dialogue_context(texts, 2, previous_lines=["Y", "Z"])[0] == ("Y", "Z")
    assert dialogue_context(texts, 0) == [()] * len(texts)


def test_shot_plan_ignores_close_cuts_and_splits_long_shots():
    specs = plan_shots([3.0, 3.4, 12.0, 19.8], 20.0, min_clip_s=1.0, max_clip_s=8.0)
    assert_covers(specs, 20.0)
    starts = [round(s.start_s, 2) for s in specs]
    assert 3.0 in starts and 12.0 in starts and 3.4 not in starts and 19.8 not in starts
    assert all(s.end_s - s.start_s <= 8.0 + 1e-6 for s in specs)
    assert split_span(0, 10, 4) == [(0, 10 / 3), (10 / 3, 20 / 3), (20 / 3, 10)]
    assert sample_times(0, 4, 4) == [0.5, 1.5, 2.5, 3.5]


@pytest.mark.skipif(not (MEDIA / "sintel").exists(), reason="shared media not present")
def test_sintel_subtitle_clips_match_the_cues():
    text, _ = decode_subtitle_bytes((MEDIA / "sintel" / "sintel_trailer.en.vtt").read_bytes())
    cues, warnings = parse_subtitles(text, "vtt")
    assert len(cues) == 6 and not warnings
    specs = plan_subtitles(cues, 52.2)
    assert_covers(specs, 52.2)
    dialogue = [s for s in specs if s.text]
    joined = " ".join(s.text for s in dialogue)
    assert joined == " ".join(c.text for c in cues)
    for c in cues:  # each line sits in a clip that overlaps its cue
        assert any(c.text in s.text and s.start_s < c.end_s and s.end_s > c.start_s for s in dialogue)
    assert dialogue[0].text == "What brings you to the land of the gatekeepers?"  # 0.5 s cue merged


def test_windows_between_lines_keep_within_max_clip_s():
    """A stretch without dialogue is cut into windows of about --window_s, never longer than --max_clip_s: rounding
    made one 11.9 s window of a gap with --window_s 8 --max_clip_s 8 (before 2026-12-06)."""
    from transforms.elements import Cue
    from transforms.segment import plan_subtitles
    plan = plan_subtitles([Cue(0, 2, "a"), Cue(13.9, 15, "b")], 16.0, window_s=8.0, max_clip_s=8.0)
    assert max(c.end_s - c.start_s for c in plan) <= 8.0 + 1e-9
    assert [c.text for c in plan] == ["a", None, None, "b", None]
    assert plan[1].start_s == 2.0 and plan[2].end_s == 13.9  # the gap still covered, in two equal windows


def test_overlapping_windows_leave_no_tail_shorter_than_min_clip_s():
    """With --hop_s under --window_s the film's last sliver joins the window before it, as with adjacent windows:
    [7.0, 7.6) was a 0.6 s clip of its own before 2026-12-06."""
    from transforms.segment import plan_windows
    assert [(c.start_s, c.end_s) for c in plan_windows(7.6, 4.0, 3.5, 1.0)] == [(0.0, 4.0), (3.5, 7.6)]
    assert [(c.start_s, c.end_s) for c in plan_windows(8.5, 4.0, None, 1.0)] == [(0.0, 4.0), (4.0, 8.5)]
