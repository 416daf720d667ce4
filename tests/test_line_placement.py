"""Which window or shot clip reads a line said at the film's edges: a line that starts inside the film but runs past
its end, or began before its start, is read by the clip at that edge (transforms.decode._clip_text, _reading_span);
a line wholly inside the film is placed as before, whole by its midpoint (segment.line_units)."""
import random
from pathlib import Path

import pytest

from testing.films import make_film, write_srt
from transforms.decode import DecodeConfig, _clip_text, decode_film
from transforms.discover import film_id_for
from transforms.elements import ClipSpec, Cue, DecodedClip, FilmError, FilmJob, FilmRef
from transforms.probe import probe_film
from transforms.subtitles import load_cues

LAST = "The last line runs past the end."


def job_for(path, cues=None) -> FilmJob:
    """A film's job with its sidecar's cues, or the cues given (times a subtitle file cannot hold)."""
    path = str(path)
    ref = FilmRef(path, Path(path).stat().st_size, film_id_for(path), "fp")
    info = probe_film(path)
    if cues is None:
        cues, _, _ = load_cues(ref, info)
    return FilmJob(ref, info, tuple(cues), needs_asr=False, config_hash="test")


def decode(job, cue_source=None, **cfg):
    """(clips, error rows) of the whole pass."""
    out = list(decode_film(job, DecodeConfig(image_size=32, **cfg), cue_source=cue_source))
    return [o.spec for o in out if isinstance(o, DecodedClip)], [o for o in out if isinstance(o, FilmError)]


class ScriptedSpeech:
    """A CueSource that 'hears' fixed utterances once the audio has reached their end, and, as the recogniser does,
    never says it has covered a time at which an utterance it has not given yet starts."""

    def __init__(self, cues):
        self.cues, self.covered_until_s = list(cues), 0.0

    def feed(self, samples, t0):
        """The utterances that end before the audio fed so far."""
        fed = t0 + samples.size / 16000
        done = [c for c in self.cues if c.end_s <= fed]
        self.cues = [c for c in self.cues if c not in done]
        self.covered_until_s = max(self.covered_until_s, min([fed] + [c.start_s for c in self.cues]))
        return done

    def finish(self):
        """The rest, the ones that run past the end of the audio included."""
        done, self.cues = self.cues, []
        return done


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A 6 s film with a cut at 3 s and a sidecar: two lines inside, one that runs past the end, one that starts
    after it (LinesPastEnd)."""
    path = make_film(tmp_path_factory.mktemp("edges") / "film.mp4", duration_s=6.0, fps=10, size=(48, 32), cuts=[3.0])
    write_srt(path.with_suffix(".srt"), [(0.5, 1.5, "First line here."), (2.0, 2.8, "Middle line."),
                                         (5.0, 8.0, LAST), (7.5, 9.0, "After the film.")])
    return path


@pytest.mark.parametrize("segment", ["window", "shot"])
def test_a_last_line_running_past_the_films_end_is_read_by_the_last_clip(film, segment):
    """A 6 s film whose last line runs 5.0-8.0 s: its midpoint, 6.5 s, lies past every clip. Before 2026-12-07 no
    clip read it (the subtitle plan did); now the last clip does. The line that starts after the end is still read
    by none, and reported. A window plan's last clip went out before the film's end was known: it now waits."""
    clips, errors = decode(job_for(film), segment=segment, window_s=2.0)
    assert clips[-1].text == LAST and clips[-1].text_source == "subtitle"
    said = " ".join(c.text for c in clips if c.text)
    assert said == f"First line here. Middle line. {LAST}"  # each once, the lines inside where they were
    assert [e.error_type for e in errors] == ["LinesPastEnd"] and errors[0].message.startswith("1 of the film's 4")


def test_the_lines_inside_the_film_are_read_by_the_same_clips_as_before(film):
    """Only the last clip changed: the clips holding the lines said inside the film read them as they did."""
    clips, _ = decode(job_for(film), segment="window", window_s=2.0)
    assert [(c.start_s, c.text) for c in clips] == [(0.0, "First line here."), (2.0, "Middle line."), (4.0, LAST)]
    shots, _ = decode(job_for(film), segment="shot")
    assert [c.text for c in shots] == ["First line here. Middle line.", LAST]


def test_a_last_utterance_running_past_the_films_end_is_read_by_the_last_clip(film):
    """Recognised speech goes by the same rule: an utterance from 5.2 s to 6.9 s in a 6 s film (Whisper's times run
    on past the sound it heard) is read by the last window or shot, as `asr`."""
    heard = [Cue(1.0, 1.8, "Heard inside.", "asr", "en", ((" Heard", 1.0, 1.4), (" inside.", 1.4, 1.8))),
             Cue(5.2, 6.9, "Heard past the end.", "asr", "en", ((" Heard", 5.2, 5.6), (" past", 5.6, 6.0),
                                                                  (" the", 6.0, 6.3), (" end.", 6.3, 6.9)))]
    for segment in ("window", "shot"):
        clips, _ = decode(job_for(film, cues=()), ScriptedSpeech(heard), segment=segment, window_s=2.0)
        assert clips[0].text == "Heard inside." and clips[-1].text == "Heard past the end.", segment
        assert clips[-1].text_source == "asr" and clips[-1].language == "en"


def test_a_first_line_begun_before_the_film_is_read_by_the_first_clip(film):
    """A line begun before the film's start (a cue from -1.0 s to 1.0 s) is read by the first clip, and so is one
    whose midpoint lies before the film (-3.0 s to 1.0 s: before 2026-12-07 read by no clip)."""
    for start in (-1.0, -3.0):
        clips, _ = decode(job_for(film, cues=[Cue(start, 1.0, "Begun before.")]), segment="window", window_s=2.0)
        assert [c.text for c in clips] == ["Begun before.", None, None], start


def test_clips_at_the_films_end_read_past_it_and_the_others_as_before():
    """_clip_text with the film's span: every clip that ends the film (overlapping windows: each of them) reads what
    is said past its end, a line that starts after the end is read by none, and lines wholly inside the film are
    read as they are without the span, whole or, longer than max_len, by their words."""
    end = 6.0
    past, after = Cue(5.0, 8.0, "Past the end."), Cue(6.5, 7.0, "After the end.")
    for a in (2.0, 4.0):  # --window_s 4 --hop_s 2: [2, 6) and [4, 6) both end the film
        read = _clip_text(ClipSpec(0, a, end, "window"), [], [past, after], max_len=8.0, film_span=(0.0, end))
        assert read.text == "Past the end."
    assert _clip_text(ClipSpec(0, 4.0, end, "window"), [], [after], max_len=8.0, film_span=(0.0, end)).text is None
    rng = random.Random(0)
    for _ in range(200):
        lines = []
        for i in range(rng.randint(1, 4)):
            a = rng.uniform(0.0, end - 0.2)
            lines.append(Cue(a, rng.uniform(a + 0.1, end), f"line {i} has four words"))
        cuts = sorted(rng.uniform(0.5, end - 0.5) for _ in range(rng.randint(0, 3)))
        for a, b in zip([0.0] + cuts, cuts + [end]):
            spec = ClipSpec(0, a, b, "shot")
            max_len = rng.choice([0.5, 8.0])
            assert (_clip_text(spec, [], lines, max_len=max_len, film_span=(0.0, end)).text
                    == _clip_text(spec, [], lines, max_len=max_len).text)
