"""Clips table: one row per clip, one Parquet file per film (clips/<film_id>.parquet)."""
import pyarrow as pa

from schemas._base import versioned
from schemas.labels import PROB_COLUMNS

# 1.2: damaged (older files read with it null: not looked for); 1.1: per-modality evidence, support and grounded
# (1.0 files read with them null)
VERSION = "1.2"
# The version a nightly run redoes films for (pipeline.options.config_hash). 1.2 only added `damaged`, which a film's
# decode alone can fill: a catalogue indexed under 1.1 is not decoded again for it (its files read it as null).
REDO_VERSION = "1.1"

EVIDENCE_MODALITIES = ("text", "face", "scene", "speech")  # == model.featurize.EVIDENCE

MEDIA_FIELDS = [
    pa.field("film_id", pa.string(), nullable=False),
    pa.field("film_path", pa.string(), nullable=False),
    pa.field("fingerprint", pa.string(), nullable=False),
    pa.field("clip_index", pa.int32(), nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("segment_source", pa.string(), nullable=False),  # subtitle | window | shot | asr
    pa.field("text", pa.string()),  # null when the clip has no dialogue
    pa.field("text_source", pa.string(), nullable=False),  # subtitle | asr | none
    pa.field("language", pa.string()),
    pa.field("n_frames", pa.int32(), nullable=False),
    pa.field("n_faces", pa.int32()),
    pa.field("has_audio", pa.bool_(), nullable=False),
    # Streams whose media in the clip is not the film as made: "video" (frames the decoder concealed, and the
    # picture built on them up to the next whole key frame; picture packets that would not decode), "audio" (sound
    # packets that would not decode, sound the file lacks). Empty: none found. The errors table says what and where.
    pa.field("damaged", pa.list_(pa.string())),
]

# Filled by the scoring stages; null when a film was cut but not scored (--score=false).
SCORE_FIELDS = [
    pa.field("emotion", pa.string()),
    *[pa.field(c, pa.float32()) for c in PROB_COLUMNS],
    pa.field("confidence", pa.float32()),
    pa.field("valence", pa.float32()),
    pa.field("arousal", pa.float32()),
    pa.field("modalities_used", pa.list_(pa.string())),  # subset of text, vision, face, audio
    pa.field("gate_text", pa.float32()),
    pa.field("gate_vision", pa.float32()),
    pa.field("gate_face", pa.float32()),
    pa.field("gate_audio", pa.float32()),
    pa.field("model_version", pa.string()),
    # What each modality says on its own: calibrated 7 probabilities (EMOTIONS order) from a classifier trained on
    # labelled data of that kind (text: the head's line classifier; face: the face classifier; scene: the scene
    # head on the frames; speech: the speech-emotion classifier); null when the clip has no such input.
    *[pa.field(f"evidence_{m}", pa.list_(pa.float32())) for m in EVIDENCE_MODALITIES],
    # support, evidence, grounded: over the modalities that may back a label (backing_evidence)
    pa.field("support", pa.float32()),  # the highest probability any single modality gives `emotion`
    pa.field("evidence", pa.list_(pa.string())),  # modalities whose own top label is `emotion`
    pa.field("grounded", pa.bool_()),  # support >= GROUNDED_SUPPORT: some modality on its own backs the label
]
# A label is grounded when some modality's own calibrated classifier gives it at least this probability (2.8x
# chance for 7 classes). Below it the label is a guess: the head's (modalities without evidence of their own,
# modalities that disagree, or its prior), or a lone modality's classifier that leans only a little its way.
GROUNDED_SUPPORT = 0.4


def backing_evidence(evidence: dict) -> dict:
    """The evidence that may back a clip's label: every modality's, but the scene classifier's where a face was found:
    the face classifier stands in for it, as in the label rule (model.predict.VISUAL; a face filling the frame is
    not a scene, and the scene classifier reads such frames at 0.06). Before 2026-12-06 the scene's word alone could
    make a clip grounded that the rule had handed to the head."""
    return {m: p for m, p in evidence.items() if not (m == "scene" and evidence.get("face") is not None)}


def grounded_today(row: dict):
    """A stored clip's `grounded` as today's rule reads it: null stays null (no evidence recorded); a clip that label
    rules before 2026-12-06 (LABEL_RULE 4) grounded on the scene classifier's word alone where a face was found is a
    guess (backing_evidence), so a report of an output not re-scored since says what a new run would. Only that
    rule's change is undone: the stored flag is trusted otherwise (float rounding cannot flip it)."""
    if row.get("grounded") is not True or row.get("evidence_face") is None or row.get("evidence_scene") is None:
        return row.get("grounded")
    from schemas.labels import EMOTIONS
    j = EMOTIONS.index(row["emotion"])
    evidence = {m: row[f"evidence_{m}"] for m in EVIDENCE_MODALITIES if row.get(f"evidence_{m}") is not None}
    return max(p[j] for p in backing_evidence(evidence).values()) >= GROUNDED_SUPPORT - 1e-6

PROVENANCE_FIELDS = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("config_hash", pa.string(), nullable=False),
]

SCHEMA = versioned("clips", VERSION, MEDIA_FIELDS + SCORE_FIELDS + PROVENANCE_FIELDS)
