"""The films a pipeline.rescore run sets out to score: <output>/rescore_plan/<run_id>.parquet, written before it
scores any. A rescore output has no manifest, so without it a report could not tell a film the run never reached
(a rescore killed or failed part way) from one that is not in the catalogue: it listed fewer films without a word."""
import pyarrow as pa

from schemas._base import versioned

VERSION = "1.0"
FOLDER = "rescore_plan"

SCHEMA = versioned("rescore_plan", VERSION, [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("film_id", pa.string(), nullable=False),
    pa.field("features_file", pa.string()),  # null: a film with a clips table and no features file (refused)
    pa.field("model_version", pa.string(), nullable=False),  # the head's, as its rescored clips record it
    pa.field("planned_at", pa.timestamp("us", tz="UTC"), nullable=False),
])
