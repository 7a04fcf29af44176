"""The analysis: statistics, intervals, the five claims, sentences and glue values (figures stay in plots)."""
