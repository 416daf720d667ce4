"""Errors table (dead letter): one row per failure, errors/<run_id>.parquet."""
import pyarrow as pa

from schemas._base import versioned

VERSION = "1.0"

SCHEMA = versioned("errors", VERSION, [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("film_id", pa.string()),
    pa.field("film_path", pa.string(), nullable=False),
    pa.field("clip_index", pa.int32()),  # null when the error concerns the whole film
    pa.field("stage", pa.string(), nullable=False),  # discover | fingerprint | read | probe | subtitles | decode | transcribe | encode | fuse | score | write
    pa.field("error_type", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("fatal", pa.bool_(), nullable=False),  # false: a warning, the film was still processed
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
])
