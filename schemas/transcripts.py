"""Transcripts table: recognised utterances per film, transcripts/<film_id>.parquet."""
import pyarrow as pa

from schemas._base import versioned

VERSION = "1.0"

SCHEMA = versioned("transcripts", VERSION, [
    pa.field("film_id", pa.string(), nullable=False),
    pa.field("film_path", pa.string(), nullable=False),
    pa.field("utterance_index", pa.int32(), nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("language", pa.string()),
    pa.field("language_probability", pa.float32()),
    pa.field("avg_logprob", pa.float32()),
    pa.field("no_speech_prob", pa.float32()),
    pa.field("words", pa.list_(pa.struct([
        pa.field("word", pa.string()), pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()), pa.field("probability", pa.float32()),
    ]))),
    pa.field("asr_model", pa.string(), nullable=False),
])
