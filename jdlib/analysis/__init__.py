"""The analysis: statistics, intervals, the five claims, sentences and glue values (figures stay in plots)."""
from . import chapter, claims, compression, scale, screen, sentences, stats, verdicts

__all__ = ["chapter", "claims", "compression", "scale", "screen", "sentences", "stats", "verdicts"]
