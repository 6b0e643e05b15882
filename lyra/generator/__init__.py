"""Generator: multi-trajectory teacher videos + latents (protocol, registry, and backends)."""

from lyra.generator.base import (
    GENERATORS,
    Generator,
    GeneratorError,
    SourceView,
    TrajectorySample,
    make_generator,
    register_generator,
    teacher_roundtrip,
)
from lyra.generator.cache import CacheGenerator
from lyra.generator.gen3c import Gen3CGenerator
from lyra.generator.oracle import OracleGenerator

__all__ = [
    "GENERATORS",
    "CacheGenerator",
    "Gen3CGenerator",
    "Generator",
    "GeneratorError",
    "OracleGenerator",
    "SourceView",
    "TrajectorySample",
    "make_generator",
    "register_generator",
    "teacher_roundtrip",
]
