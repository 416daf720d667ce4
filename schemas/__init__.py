"""pyarrow schemas of every table the project writes. Each carries `table` and `schema_version` metadata."""
from schemas import clips, errors, features, manifest, rescore_plan, transcripts
from schemas._base import rows_to_table, schema_version
from schemas.labels import EMOTIONS, NUM_EMOTIONS, PROB_COLUMNS

TABLES = {"clips": clips.SCHEMA, "errors": errors.SCHEMA, "manifest": manifest.SCHEMA,
          "features": features.SCHEMA, "transcripts": transcripts.SCHEMA,
          "rescore_plan": rescore_plan.SCHEMA}

__all__ = ["TABLES", "EMOTIONS", "NUM_EMOTIONS", "PROB_COLUMNS", "rows_to_table", "schema_version"]
