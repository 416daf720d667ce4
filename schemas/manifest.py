"""Manifest: one row per input film per run, one small file per film: manifest/<run_id>/<film_id>.parquet (the
film's commit; skipped films in manifest/<run_id>/skipped.parquet). Later runs read it to skip work. Version 1.0
outputs (manifest/<run_id>.parquet, no wall_s) and 1.1 (no moved_from, content_fingerprint) stay readable."""
import pyarrow as pa

from schemas._base import versioned

VERSION = "1.2"  # 1.2: moved_from, content_fingerprint (films moved or renamed); 1.1: wall_s

STATUSES = ("ok", "failed", "skipped")

# The table of the films a run skipped: manifest/<run_id>/SKIPPED_FILE.parquet (the pipeline writes it, the report
# reads it by name with few columns)
SKIPPED_FILE = "skipped"

SCHEMA = versioned("manifest", VERSION, [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("film_id", pa.string(), nullable=False),
    pa.field("film_path", pa.string(), nullable=False),
    pa.field("size_bytes", pa.int64()),
    pa.field("fingerprint", pa.string()),
    pa.field("config_hash", pa.string(), nullable=False),  # segmentation/decoding options + model version
    pa.field("model_version", pa.string()),
    pa.field("status", pa.string(), nullable=False),  # ok | failed | skipped
    pa.field("duration_s", pa.float64()),
    pa.field("n_clips", pa.int32()),
    pa.field("output_file", pa.string()),
    pa.field("error", pa.string()),
    pa.field("processed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("wall_s", pa.float64()),  # seconds this film took in this run (decode to commit); null if skipped
    pa.field("moved_from", pa.string()),  # an ok row of a film found moved: its old path (outputs kept, not scored)
    pa.field("content_fingerprint", pa.string()),  # the film's bytes alone: a film moved or renamed is found by it
])
