"""The sample schema, ids, and reading/writing dataset files."""

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
