"""Shared machinery: every table schema carries its name and version in the Parquet metadata."""
import pyarrow as pa


def versioned(name: str, version: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema(fields, metadata={b"table": name.encode(), b"schema_version": version.encode()})


def schema_version(schema: pa.Schema) -> str:
    return (schema.metadata or {}).get(b"schema_version", b"").decode()


def rows_to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Build a table from row dicts, filling absent nullable columns with nulls and checking types."""
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
