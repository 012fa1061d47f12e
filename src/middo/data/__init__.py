"""The sample schema, ids, and reading/writing dataset files."""

from middo.data.config import DataConfig
from middo.data.export import export_file
from middo.data.ingest import IngestReport, ingest
from middo.data.normalise import IngestPolicy
from middo.data.schema import (
    OPS,
    ROLES,
    SAMPLE_SCHEMA,
    empty_samples,
    prompt_messages,
    read_samples,
    response_text,
    sample_id,
    validate_samples,
    write_samples,
)

__all__ = [
    "DataConfig",
    "IngestPolicy",
    "IngestReport",
    "export_file",
    "ingest",
    "OPS",
    "ROLES",
    "SAMPLE_SCHEMA",
    "empty_samples",
    "prompt_messages",
    "read_samples",
    "response_text",
    "sample_id",
    "validate_samples",
    "write_samples",
]
