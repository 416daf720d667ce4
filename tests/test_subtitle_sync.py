"""Sidecars checked against the film's speech (transforms.subtitle_sync): what VAD hears is built here directly, a
bool per 32 ms window, so each case runs in milliseconds (tests/test_subtitles.py runs one on a real film)."""
import numpy as np
import pytest

from transforms.elements import Cue
from transforms.subtitle_sync import FILM_RATE, phi, resync

WINDOW_S = 512 / 16000  # Silero VAD's window


def talk(length_s, seed=0, gap=(1.0, 5.0)):
    """(the film's spoken lines [(start_s, end_s)], what VAD hears of them: [(sample start, bool per window)]) for a
    film of length_s: one sample of all of it when short, else three 150 s ones at 20, 50 and 80 %, as
    transforms.probe.sample_audio takes them. VAD misses and imagines a window now and then."""
    rng = np.random.default_rng(seed)
    lines, t = [], rng.uniform(0.5, 3.0)
    while t < length_s:
        d = rng.uniform(1.0, 4.0)
        lines.append((t, t + d))
        t += d + rng.uniform(*gap)
    starts, span = ([0.0], length_s + 1.0) if length_s <= 450 else ([p * length_s for p in (0.2, 0.5, 0.8)], 150.0)
    a, b = np.array(lines).T
    speech = []
    for t0 in starts:
        times = t0 + np.arange(int(span / WINDOW_S)) * WINDOW_S
        k = np.searchsorted(a, times, side="right") - 1  # the last line begun
        heard = (k >= 0) & (times < b[np.maximum(k, 0)])
        speech.append((t0, heard ^ (rng.random(times.size) < 0.05)))
    return lines, speech


def cues(lines, per_line=("Line",)):
    """Cues at these times, one per line in each of per_line's languages (a bilingual file: two at once)."""
    return [Cue(a, b, f"{word} {i}.") for i, (a, b) in enumerate(lines) for word in per_line]


def test_overlapping_lines_count_once_in_the_agreement():
    # A bilingual sidecar (each line as a Chinese and an English event, at the same times) on talky dialogue.
    # Before 2026-12-06 each event's windows were added up: 'shown' passed 100 %, the phi's spread was clamped
    # and the agreement ran into the thousands; the right file was 'retimed', another film's was moved into
    # plausibility.
    lines, speech = talk(240, gap=(0.3, 1.5))
    both = np.array(sorted((a, b) for a, b in lines for _ in range(2)))
    assert phi(both, speech, 1.0, np.zeros(1))[0][0] == pytest.approx(phi(np.array(lines), speech, 1.0,
                                                                               np.zeros(1))[0][0])
    scores, _ = phi(both, speech, 1.0, np.arange(-29.9, 29.85, 0.1))
    assert np.all(np.abs(scores) <= 1.0)
    bilingual = cues(lines, ("Line", "行"))
    assert resync(bilingual, speech) == (bilingual, None)
    moved, message = resync(cues([(a + 2, b + 2) for a, b in lines], ("Line", "行")), speech)
    assert "retimed -2.0 s" in message and [c.start_s for c in moved[::2]] == pytest.approx([a for a, _ in lines])
    foreign, _ = talk(240, seed=9, gap=(0.3, 1.5))
    kept, message = resync(cues(foreign, ("Line", "行")), speech)
    assert [c.start_s for c in kept[::2]] == [a for a, _ in foreign] and "do not follow" in message


@pytest.fixture(scope="module")
def feature():
    """A 90-minute film's lines and the speech its three samples hear."""
    return talk(5400, seed=2)


def test_a_sidecar_for_another_cut_keeps_its_timing_with_a_row(feature):
    # A sidecar for a cut without a 3 s scene at 50 % of a 90-minute film: the lines of the first half are right,
    # the others 3 s early. Before 2026-12-06 one shift was fitted to all the samples: the right half moved 3.1 s
    # late, with a row that read as a fix.
    lines, speech = feature
    cut = [(a, b) if a < 2700 else (a - 3, b - 3) for a, b in lines]
    kept, message = resync(cues(cut), speech)
    assert [(c.start_s, c.end_s) for c in kept] == cut
    assert message.startswith("lines follow the film's speech around 00:19:15 but not around 00:46:15 and 01:13:15")
    assert "+3.0 s" in message and "another cut?" in message
    # A scene added at 65 %: the two samples before it are right, the last one is late; nothing retimed then
    # either, but before the row was not written.
    added = [(a, b) if a < 3510 else (a + 8, b + 8) for a, b in lines]
    kept, message = resync(cues(added), speech)
    assert kept[-1].start_s == added[-1][0] and "around 00:19:15 and 00:46:15 but not around 01:13:15" in message


@pytest.mark.parametrize("timing,done", [(lambda t: t + 4.0, "retimed -4.0 s"),
                                         (lambda t: t * FILM_RATE / 25, "retimed x 1.04271 +0.0 s"),
                                         (lambda t: t * 1000 / 1001, "retimed x 1.00100 +0.0 s")])
def test_one_timing_for_every_sample_is_still_retimed(feature, timing, done):
    # A constant offset, or a frame-rate drift (4 % or 0.1 %, 4 s by the end of the film), fits every sample
    # with one scale and offset: the lines follow the speech again.
    lines, speech = feature
    moved, message = resync(cues([(timing(a), timing(b)) for a, b in lines]), speech)
    assert done in message and max(abs(c.start_s - a) for c, (a, _) in zip(moved, lines)) < 0.1


@pytest.mark.parametrize("length_s", [240, 5400])
def test_a_sidecar_that_does_not_follow_the_speech_gets_a_row(length_s, feature):
    # Another film's lines, or lines 45 s late (beyond the offsets tried), on a film whose speech is clearly heard:
    # before 2026-12-06 used without a row though the agreement had been computed (about 0, where right lines
    # agree 0.5-0.6). The lines are kept: the row is the record.
    lines, speech = feature if length_s == 5400 else talk(length_s)
    foreign, _ = talk(length_s, seed=7)
    for other in (foreign, [(a + 45, b + 45) for a, b in lines]):
        kept, message = resync(cues(other), speech)
        assert [c.start_s for c in kept] == [a for a, _ in other]
        assert message.startswith("lines do not follow the film's speech (agreement ") and "another film" in message
    assert resync(cues(lines), speech)[1] is None
    silent = [(t0, np.zeros_like(heard)) for t0, heard in speech]  # no speech heard: no evidence, no row
    assert resync(cues(foreign), silent)[1] is None


def test_lines_a_retime_moves_before_the_films_start_are_dropped():
    # A sidecar 5 s late with two lines in its version's longer intro: retimed -5 s, they fall before the film's
    # start. Before 2026-12-06 they became empty cues at 0.0; now they are dropped and counted in the row.
    lines, speech = talk(240, seed=3)
    given = [(0.5, 2.0), (2.5, 5.5)] + [(a + 5, b + 5) for a, b in lines]
    moved, message = resync(cues(given), speech)
    assert "retimed -5.0 s" in message and message.endswith("; 1 line before the film's start dropped")
    assert moved[0].start_s == 0.0 and moved[0].end_s == pytest.approx(0.5) and len(moved) == len(given) - 1
    assert all(c.end_s > c.start_s for c in moved)
