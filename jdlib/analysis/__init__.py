"""The analysis: statistics, intervals, the five claims, sentences and glue values (figures stay in plots)."""
from . import claims, compression, sentences, stats, verdicts

__all__ = ["claims", "compression", "sentences", "stats", "verdicts"]
