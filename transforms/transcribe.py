"""Transcribe step: dialogue from speech for films without subtitles.

`AsrCueSource` is a streaming cue source (the duck-typed protocol of the clip planner): the film's single
decode pass feeds it 16 kHz mono audio piece by piece; it buffers about `chunk_s` seconds, cuts at a pause
where it can, and transcribes each chunk with faster-whisper (Silero VAD on, word timestamps on, no
conditioning on the previous chunk's text so one hallucination cannot feed the next). Memory stays bounded
by one chunk plus one fed piece, whatever the film's length. Unless the language is given, Whisper detects it in
every chunk, and each utterance is tagged by its own text where that is long enough to identify (as subtitle lines
are: transforms.language), else by its chunk's detection.

Whisper invents text over music and noise; VAD removes most of it, and `SpeechFilters` drops the segments
that still look like hallucinations (repetitive, low confidence, or probably not speech), each judged by its own
text and words.

`assign_words` places recognised words in clips (for window/shot plans); `transcript_rows` turns the
utterances into rows of the transcripts table (schemas/transcripts.py).
"""
from __future__ import annotations

import bisect
import dataclasses
from typing import Optional, Sequence

import numpy as np

from model.encoders.audio import SAMPLE_RATE
from transforms.elements import Cue
from transforms.dialogue import dialogue_text
from transforms.language import label_cues, line_language

TOKENS_PER_SPEECH_S = 8  # generous for fast speech (~4 words/s) incl. timestamp tokens; caps runaway loops
MIN_NEW_TOKENS = 32
MAX_NEW_TOKENS = 400  # Whisper's decoder holds 448 tokens including the prompt
# A chunk is heard in another language than the film's first only when Whisper is this sure of it: on a chunk of a
# few words its guess is often wrong, and a one-language film's line was then transcribed in (or translated into) the
# guessed language. Less sure, the chunk is decoded again in the film's language (rare: a second pass on that chunk).
LANGUAGE_SWITCH_P = 0.7
# Silero VAD's threshold for a chunk's speech stretches: a chunk without any is never given to Whisper, and a
# recognised segment must lie on them (heard). Below faster-whisper's 0.5: lines spoken under loud score music
# reach 0.35-0.5 in some chunks (the Sintel trailer's last two), and music, birdsong and silence still give no words
# (docs/asr.md).
VAD_GATE_THRESHOLD = 0.35
# A second look (AsrCueSource._transcribe): VAD speech at least MISSED_SPEECH_S long that no kept line covers (a
# line's span widened by LINE_MARGIN_S each side: VAD pads its stretches by 0.4 s) is decoded again on its own, at
# most MAX_SECOND_LOOKS stretches a chunk, the longest first.
MISSED_SPEECH_S = 1.0
LINE_MARGIN_S = 0.5
MAX_SECOND_LOOKS = 2
# Which lines speech recognition gives a film: part of the config hash when films are transcribed, so a nightly run
# redoes them when it changes. 2: Whisper hears whole chunks, VAD decides afterwards, gate 0.35 (2026-12-03). 3
# (2026-12-06): a recognised line is read as a subtitle's is (dialogue_text: no '(sighs)', no 'JOHN:'). 4 (2026-12-06,
# the same day): a segment is judged by its own text and words, not its 30 s window's; the language is detected in
# every chunk, each line tagged by its own text where it can be; a recognised line keeps the words cleaning left. 5
# (2026-12-07): a second look at VAD speech no kept line covers (a chunk's other language was left unread).
ASR_RULE = "5"


def mean_word_probability(segment) -> Optional[float]:
    """The mean of a segment's own words' probabilities; None for a segment without words."""
    words = segment.words or ()
    return float(np.mean([w.probability for w in words])) if words else None


@dataclasses.dataclass(frozen=True)
class SpeechFilters:
    """Thresholds that drop a recognised segment as a probable hallucination (music, noise, silence).

    A segment is judged by its own text and its own words. faster-whisper gives every segment of a 30 s window the
    window's compression ratio, log-probability and no-speech probability: before 2026-12-06 those decided, and a
    window whose lines repeated each other (an actor's takes) or held one unsure stretch lost every line in it
    (JFK then six RAVDESS takes: JFK dropped with them at the window's 2.43; 24 of 25 RAVDESS lines at 4.19)."""
    max_compression_ratio: float = 2.4  # zlib ratio of the segment's text: "la la la la...", "Mmmm..." loops
    min_compression_chars: int = 24  # shorter text is not judged: its ratio is zlib's overhead (27 'm's reach 2.4)
    min_word_probability: float = 0.3  # the words' mean probability below this: mumbled guesses, unsure of each
    max_no_speech_prob: float = 0.6  # Whisper thinks the window holds no speech (a window's value: all it gives) ...
    no_speech_word_probability: float = 0.6  # ... and this segment's words are not confidently decoded either
    # The window's decoding: Whisper's own check (log_prob_threshold: with the no-speech probability it skips a
    # window), and the stand-in for the words' probabilities where a segment has no words.
    min_avg_logprob: float = -1.0
    no_speech_logprob: float = -0.5
    min_heard_s: float = 0.2  # a segment must overlap the chunk's VAD speech by this much (or half its length)

    def keep(self, segment) -> bool:
        """Whether a recognised segment is dialogue rather than a probable hallucination."""
        text = segment.text.strip()
        if not dialogue_text(text):  # '[Music]', '♪ ♪', a song: not dialogue (as for subtitles)
            return False
        from faster_whisper.transcribe import get_compression_ratio  # (Whisper's measure of a looping text)
        if len(text) >= self.min_compression_chars and get_compression_ratio(text) > self.max_compression_ratio:
            return False
        confidence = mean_word_probability(segment)
        if confidence is None:  # no words to judge by: the window's decoding (rare)
            return self._window_confident(segment)
        if confidence < self.min_word_probability:
            return False
        # The mean, not the weakest word: a RAVDESS line Whisper read well (mean 0.81) had a word at 0.00, in a
        # window it gave a no-speech probability of 0.71.
        return not (segment.no_speech_prob > self.max_no_speech_prob and confidence < self.no_speech_word_probability)

    def _window_confident(self, segment) -> bool:
        """The rule before 2026-12-06, on the window's values: for a segment that has no words of its own."""
        if segment.avg_logprob < self.min_avg_logprob:
            return False
        return not (segment.no_speech_prob > self.max_no_speech_prob and segment.avg_logprob < self.no_speech_logprob)


@dataclasses.dataclass(frozen=True)
class UtteranceStats:
    """What the transcripts table keeps beyond the Cue: decoder confidence, per-word probabilities (one per word
    of the Cue) and Whisper's probability for the line's language (None where it was given, or where the line's
    own text named another language than its chunk's detection)."""
    avg_logprob: float
    no_speech_prob: float
    word_probabilities: tuple[float, ...]
    language_probability: Optional[float] = None


class AsrCueSource:
    """Streaming speech-recognised cues for one film (a transforms.elements.CueSource).

    feed(audio, t0_s) -> newly completed utterances; finish() -> the rest; covered_until_s: film time up
    to which no new utterance can start (clips ending before it can be finalised); after finish() it is the
    end of the audio fed.
    Pieces should arrive in time order; overlaps are trimmed, short gaps padded with silence, and a gap
    longer than `max_gap_s` flushes the buffer (the audio in between was never decoded).
    """

    def __init__(self, model, language: Optional[str] = None, chunk_s: float = 30.0,
                 min_chunk_s: float = 20.0, max_gap_s: float = 1.0, beam_size: int = 5,
                 temperatures: Sequence[float] = (0.0,), filters: SpeechFilters = SpeechFilters()):
        """temperatures: Whisper's decoding temperatures, tried in turn while a segment fails the filters' thresholds.
        Beam search only by default: a fallback above 0 samples, at random (CTranslate2's unseeded generator), so a
        film heard twice read two ways (a RAVDESS line in a labelled film: "Kids are talk", "Kids are.  Talk.",
        "Kids are... talk!" in three runs, and its fused label with them); the filters drop what beam search gets
        wrong instead. On the speech sets of benchmarks.asr the WER is the same either way (2026-12-04)."""
        if not 0 < min_chunk_s <= chunk_s <= 30.0:
            raise ValueError("need 0 < min_chunk_s <= chunk_s <= 30 (Whisper's window)")
        self.whisper = getattr(model, "whisper", model)  # an AsrModel or a bare WhisperModel
        self.given_language = language  # forces every chunk; None: Whisper detects each chunk's
        # The film's language as first heard: the given one, else the first chunk with an accepted line's detection
        # (each line carries its own: Cue.language). Before 2026-12-06 that first detection forced every later chunk.
        self.language = language
        self.language_probability: Optional[float] = None  # None when the language was given
        self.chunk_s, self.min_chunk_s, self.max_gap_s = chunk_s, min_chunk_s, max_gap_s
        self.beam_size, self.temperatures, self.filters = beam_size, tuple(temperatures), filters
        self.details: list[UtteranceStats] = []  # one per emitted cue, same order
        self.failures: list[str] = []  # chunks Whisper failed on (skipped: the film goes on without them)
        self.speech_s = 0.0  # seconds of audio VAD kept (for real-time-factor and sanity checks)
        self.covered_until_s = 0.0
        self._pieces: list[np.ndarray] = []
        self._n = 0  # samples buffered
        self._start_s: Optional[float] = None  # film time of the buffer's first sample
        self._finished = False

    # --- the cue-source protocol -------------------------------------------------------------------
    def feed(self, audio: np.ndarray, t0_s: float) -> list[Cue]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        out: list[Cue] = []
        if self._start_s is None:
            self._start_s = self.covered_until_s = float(t0_s)
        end_s = self._end_s()
        if t0_s > end_s + self.max_gap_s:
            out += self._drain(everything=True)
            self._start_s = self.covered_until_s = float(t0_s)
        elif t0_s < end_s:  # overlapping clips: keep only the new tail
            audio = audio[int(round((end_s - t0_s) * SAMPLE_RATE)):]
        elif t0_s > end_s:
            self._append(np.zeros(int(round((t0_s - end_s) * SAMPLE_RATE)), np.float32))
        if audio.size:
            self._append(audio)
        return out + self._drain(everything=False)

    def finish(self) -> list[Cue]:
        out = self._drain(everything=True) if self._start_s is not None else []
        self._finished = True
        # Finite on purpose: planners use it as "planned up to"; the film's end is theirs to decide.
        return out

    # --- internals ---------------------------------------------------------------------------------
    def _end_s(self) -> float:
        return self._start_s + self._n / SAMPLE_RATE

    def _append(self, audio: np.ndarray) -> None:
        self._pieces.append(audio)
        self._n += audio.size

    def _drain(self, everything: bool) -> list[Cue]:
        out: list[Cue] = []
        chunk = int(self.chunk_s * SAMPLE_RATE)
        while self._n >= chunk or (everything and self._n > 0):
            buf = np.concatenate(self._pieces) if len(self._pieces) > 1 else self._pieces[0]
            # A full buffer is cut at a pause too: before 2026-12-06 one of exactly chunk_s (six 5 s pieces) was cut
            # at 30.00 s, whatever word was said there. Only audio nothing follows (the end, a gap) goes whole.
            whole = everything and self._n <= chunk
            cut = self._n if whole else self._cut_point(buf)
            out += self._transcribe(buf[:cut], self._start_s)
            rest = buf[cut:]
            self._pieces, self._n = ([rest] if rest.size else []), rest.size
            self._start_s += cut / SAMPLE_RATE
            self.covered_until_s = self._start_s
        return out

    def _cut_point(self, buf: np.ndarray) -> int:
        """A sample index in [min_chunk_s, chunk_s]: the quietest 50 ms there, so words are rarely split."""
        lo, hi = int(self.min_chunk_s * SAMPLE_RATE), int(self.chunk_s * SAMPLE_RATE)
        hop = SAMPLE_RATE // 20
        window = buf[lo:hi]
        n = window.size // hop
        if n == 0:
            return hi
        energy = np.square(window[: n * hop].reshape(n, hop)).mean(axis=1)
        # Prefer the latest of the near-quietest frames: longer chunks mean fewer Whisper calls.
        quiet = np.flatnonzero(energy <= energy.min() * 1.5 + 1e-10)
        return lo + int(quiet[-1]) * hop + hop // 2

    def _transcribe(self, audio: np.ndarray, start_s: float) -> list[Cue]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        speech = get_speech_timestamps(audio, VadOptions(threshold=VAD_GATE_THRESHOLD))
        speech_s = sum(s["end"] - s["start"] for s in speech) / SAMPLE_RATE
        if speech_s <= 0:  # no voice at all: never ask Whisper (it would invent something)
            return []
        self.speech_s += speech_s
        # Whisper hears the whole chunk, not only the stretches VAD kept: glued together without the time between
        # them, lines spoken under music lost their words (the Sintel trailer's last two lines, docs/asr.md).
        # VAD decides afterwards instead: a segment with no speech under it is dropped (heard).
        kept = self._heard_segments(audio, 0, speech, speech_s, start_s)
        if kept is None:
            return []
        # A second look at speech no kept line covers: Whisper gives one language per window and may skip the rest
        # (JFK then 15 s of German: the German gave no line). Only beside a kept line: in a chunk where Whisper
        # kept none (music, tones, birdsong) a look again at the same sound finds nothing and doubled its cost.
        missed = missed_speech(speech, [seg for _, seg, _ in kept], audio.size) if kept else []
        for a, b in missed[:MAX_SECOND_LOOKS]:
            again = self._heard_segments(audio[a:b], a, speech, (b - a) / SAMPLE_RATE, start_s)
            kept += again or []  # its stretch holds no kept line: nothing is said twice
        out = []
        for offset, seg, info in sorted(kept, key=lambda k: k[0] / SAMPLE_RATE + float(k[1].start)):
            if self.language is None:  # the film's language as first heard (informational: forces nothing)
                self.language, self.language_probability = info.language, float(info.language_probability)
            out.append(self._utterance(seg, info, start_s + offset / SAMPLE_RATE))
        return out

    def _heard_segments(self, audio: np.ndarray, offset: int, speech: Sequence[dict], speech_s: float,
                        start_s: float) -> Optional[list]:
        """(offset, segment, info) of each segment Whisper gives for `audio` (which begins `offset` samples into
        its chunk, whose VAD stretches are `speech`) that the filters keep and VAD heard; None where Whisper failed
        (said in failures)."""
        try:
            segments, info = self._decode(audio, self.given_language, speech_s)
            if (self.given_language is None and self.language is not None and info.language != self.language
                    and float(info.language_probability) < LANGUAGE_SWITCH_P):
                segments, info = self._decode(audio, self.language, speech_s)
        except Exception as exc:  # noqa: BLE001 - one bad chunk must not cost the film its other lines
            t0 = start_s + offset / SAMPLE_RATE
            self.failures.append(f"{t0:.1f}-{t0 + audio.size / SAMPLE_RATE:.1f}s: {type(exc).__name__}: {exc}")
            return None
        shifted = [{"start": s["start"] - offset, "end": s["end"] - offset} for s in speech]
        return [(offset, seg, info) for seg in segments
                if self.filters.keep(seg) and heard(seg, shifted, self.filters.min_heard_s)]

    def _decode(self, audio: np.ndarray, language: Optional[str], speech_s: float) -> tuple[list, object]:
        """Whisper's segments (decoded: the generator does the work, so a failure is raised here) and its info for a
        chunk, in `language` (None: the one it detects)."""
        segments, info = self.whisper.transcribe(
            audio, language=language, beam_size=self.beam_size, temperature=list(self.temperatures),
            vad_filter=False, word_timestamps=True, condition_on_previous_text=False,
            compression_ratio_threshold=self.filters.max_compression_ratio,
            log_prob_threshold=self.filters.min_avg_logprob,
            no_speech_threshold=self.filters.max_no_speech_prob,
            max_new_tokens=min(MAX_NEW_TOKENS, MIN_NEW_TOKENS + int(TOKENS_PER_SPEECH_S * speech_s)))
        return list(segments), info

    def _utterance(self, seg, info, start_s: float) -> Cue:
        """The cue of a kept segment (its UtteranceStats appended to details): read as a subtitle's line is (no
        '(sighs)', 'JOHN:'), with the Whisper words the cleaning left (kept_words) and its own language."""
        said = seg.text.strip()
        text = dialogue_text(said)
        kept = list(seg.words or ()) if " ".join(said.split()) == text else kept_words(seg.words or (), text)
        words = tuple((w.word, start_s + float(w.start), start_s + float(w.end)) for w in kept)
        start = words[0][1] if words else start_s + float(seg.start)
        end = words[-1][2] if words else start_s + float(seg.end)
        language, probability = self._line_language(text, info)
        self.details.append(UtteranceStats(float(seg.avg_logprob), float(seg.no_speech_prob),
                                           tuple(float(w.probability) for w in kept), probability))
        return Cue(start_s=start, end_s=end, text=text, source="asr", language=language, words=words)

    def _line_language(self, text: str, info) -> tuple[Optional[str], Optional[float]]:
        """(language, Whisper's probability for it) of one recognised line: the given language; else the line's own
        text where it has enough letters to identify (transforms.language.label_cues, as a subtitle track's lines
        are tagged), else its chunk's detection. Before 2026-12-06 every line carried the chunk's language, and
        every chunk was forced to the film's first: English after German lines was tagged German and not read."""
        if self.given_language:
            return self.given_language, None
        language = label_cues([Cue(0.0, 0.0, text, source="asr", language=info.language)])[0].language
        return language, (float(info.language_probability) if language == line_language(info.language) else None)


def kept_words(words: Sequence, line: str) -> list:
    """The Whisper words (faster-whisper Words) a cleaned line still says, in order: each word whose text comes next
    in the line, as a whole word there, is kept; the others ('(sighs)', 'JOHN:') were taken out. [] where the kept
    words do not spell the whole line (a description glued to a word: 'you(sighs).'), so its words are spread over
    it instead (segment.cue_words). Before 2026-12-06 every word was dropped whenever the cleaning changed the text
    at all, even a double space."""
    kept, pos = [], 0
    for i, w in enumerate(words):
        token = w.word.strip()
        at = len(line) - len(line[pos:].lstrip())
        end = at + len(token)
        # A word ends where the line has a space, unless Whisper's next word goes on without one (a language written
        # without spaces): '(I' taken out must not match the start of 'It'.
        joined = i + 1 < len(words) and not words[i + 1].word[:1].isspace()
        whole = end >= len(line) or line[end].isspace() or joined
        if token and whole and line.startswith(token, at):
            kept.append(w)
            pos = end
    return kept if kept and not line[pos:].strip() else []


def missed_speech(speech: Sequence[dict], segments: Sequence, n: int) -> list[tuple[int, int]]:
    """(start, end) samples of the chunk's VAD stretches (get_speech_timestamps' dicts) that no segment covers, longest
    first: the parts at least MISSED_SPEECH_S long, those with no segment between them joined into one stretch."""
    covered = sorted((max(0, int((float(g.start) - LINE_MARGIN_S) * SAMPLE_RATE)),
                      min(n, int((float(g.end) + LINE_MARGIN_S) * SAMPLE_RATE))) for g in segments)
    parts = []
    for s in speech:
        a, b = s["start"], s["end"]
        for c0, c1 in covered:
            if c0 > a:
                parts.append((a, min(b, c0)))
            a = max(a, c1)
            if a >= b:
                break
        if a < b:
            parts.append((a, b))
    parts = [(a, b) for a, b in parts if b - a >= MISSED_SPEECH_S * SAMPLE_RATE]
    joined: list[tuple[int, int]] = []
    for a, b in parts:
        if joined and not any(joined[-1][1] <= c0 < a or joined[-1][1] < c1 <= a for c0, c1 in covered):
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return sorted(joined, key=lambda p: p[0] - p[1])


def heard(segment, speech: Sequence[dict], min_heard_s: float) -> bool:
    """Whether VAD heard speech under a recognised segment: its span (in the chunk's seconds) overlaps the speech
    stretches (get_speech_timestamps' samples) by min_heard_s, or by half the segment when it is shorter."""
    start, end = float(segment.start), float(segment.end)
    overlap = sum(max(0.0, min(end, s["end"] / SAMPLE_RATE) - max(start, s["start"] / SAMPLE_RATE)) for s in speech)
    return overlap >= min(min_heard_s, 0.5 * (end - start))


def asr_threads(opts) -> int:
    """CTranslate2 threads for a worker: --asr_cpu_threads, else the worker's --torch_threads. CTranslate2's own
    default (4) in each of two one-thread workers on 2 cores made the README's multi-core command over two
    2-minute films without subtitles 15 % slower (63.7 / 55.7 s against 53.0 / 47.3 s, alternating)."""
    return int(getattr(opts, "asr_cpu_threads", 0) or getattr(opts, "torch_threads", 0) or 0)


class AsrCueSourceFactory:
    """Picklable `(FilmJob) -> AsrCueSource` for the decode step (its cue_source_factory).

    The Whisper model loads lazily, once per worker process, through a Beam shared handle, so every DoFn
    instance and thread of a worker uses the same weights.
    """

    def __init__(self, asr_model: Optional[str] = None, language: Optional[str] = None, device: str = "cpu",
                 cpu_threads: int = 0, **source_kwargs):
        from apache_beam.utils import shared

        self.asr_model, self.language, self.device, self.cpu_threads = asr_model, language, device, cpu_threads
        self.source_kwargs = source_kwargs
        self._shared = shared.Shared()
        self._model = None

    @classmethod
    def from_options(cls, opts, **source_kwargs) -> "AsrCueSourceFactory":
        return cls(asr_model=getattr(opts, "asr_model", None), language=getattr(opts, "asr_language", None),
                   device=getattr(opts, "device", "cpu") or "cpu",
                   cpu_threads=asr_threads(opts), **source_kwargs)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = None  # weights never travel with the pipeline graph
        return state

    def model(self):
        if self._model is None:
            from model.asr import load_asr_model

            key = f"asr|{self.asr_model}|{self.device}|{self.cpu_threads}"
            self._model = self._shared.acquire(
                lambda: load_asr_model(self.asr_model, device=self.device, cpu_threads=self.cpu_threads), tag=key)
        return self._model

    @property
    def model_name(self) -> str:
        """Recorded in the outputs; known without loading the weights."""
        from model.asr import asr_model_name

        return asr_model_name(self.asr_model)

    def __call__(self, job=None) -> AsrCueSource:
        return AsrCueSource(self.model(), language=self.language, **self.source_kwargs)


def _span(clip) -> tuple[float, float]:
    if isinstance(clip, (tuple, list)):
        return float(clip[0]), float(clip[1])
    return float(clip.start_s), float(clip.end_s)


def assign_words(words: Sequence[tuple[str, float, float]], clips: Sequence) -> list[Optional[str]]:
    """The text of each clip from recognised words: a word belongs to a clip when its midpoint lies in the
    clip's half-open span [start_s, end_s) (a midpoint exactly on a shared boundary goes to the later clip).
    Overlapping clips each get the word. `clips` are ClipSpecs or (start_s, end_s) pairs; words are
    (word, start_s, end_s) as in Cue.words, kept in Whisper's form (leading space), so joining is exact for
    languages written without spaces too. None for a clip with no words.
    """
    ordered = sorted(words, key=lambda w: (w[1] + w[2]) / 2)
    mids = [(w[1] + w[2]) / 2 for w in ordered]
    out: list[Optional[str]] = []
    for clip in clips:
        start, end = _span(clip)
        lo, hi = bisect.bisect_left(mids, start), bisect.bisect_left(mids, end)
        text = "".join(w[0] for w in ordered[lo:hi]).strip()
        out.append(text or None)
    return out


def transcript_rows(film_id: str, film_path: str, cues: Sequence[Cue], asr_model_name: str,
                    details: Optional[Sequence[UtteranceStats]] = None,
                    language_probability: Optional[float] = None) -> list[dict]:
    """Rows of the transcripts table, one per utterance. `details` (AsrCueSource.details) adds decoder
    confidences, word probabilities and each line's language probability; `language_probability`
    (AsrCueSource.language_probability) stands for the lines without details."""
    rows = []
    for i, cue in enumerate(cues):
        d = details[i] if details is not None and i < len(details) else None
        probs = d.word_probabilities if d is not None else ()
        rows.append({
            "film_id": film_id, "film_path": film_path, "utterance_index": i,
            "start_s": float(cue.start_s), "end_s": float(cue.end_s), "text": cue.text, "language": cue.language,
            "language_probability": d.language_probability if d is not None else language_probability,
            "avg_logprob": d.avg_logprob if d else None, "no_speech_prob": d.no_speech_prob if d else None,
            "words": [{"word": w.strip(), "start_s": float(s), "end_s": float(e),
                       "probability": probs[j] if j < len(probs) else None}
                      for j, (w, s, e) in enumerate(cue.words)],
            "asr_model": asr_model_name,
        })
    return rows
