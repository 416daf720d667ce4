"""Features table: what the head consumes per clip, so a new head can re-score without decoding.

Each modality is a token sequence [length, dim] stored flat (row-major) with its length; length 0 means
the modality is missing. Pooled (mean) vectors are kept too for search and analysis.
"""
import pyarrow as pa

from schemas._base import versioned

VERSION = "1.1"  # 1.1: the scene classifier's frame tokens (scene_*); a 1.0 table reads with none

MODALITIES = ("text", "vision", "face", "audio")  # what the head reads
TOKEN_SETS = MODALITIES + ("scene",)  # what is stored: the head's tokens and the scene classifier's

SCHEMA = versioned("features", VERSION, [
    pa.field("film_id", pa.string(), nullable=False),
    pa.field("film_path", pa.string(), nullable=False),
    pa.field("clip_index", pa.int32(), nullable=False),
    pa.field("encoder_version", pa.string(), nullable=False),
    *[f for m in TOKEN_SETS for f in (
        pa.field(f"{m}_len", pa.int32(), nullable=False),
        pa.field(f"{m}_dim", pa.int32(), nullable=False),
        pa.field(f"{m}_tokens", pa.list_(pa.float32())),
        pa.field(f"{m}_pooled", pa.list_(pa.float32())),
    )],
])
