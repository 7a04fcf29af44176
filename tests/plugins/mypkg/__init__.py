"""A toy package of plug-in pruning methods (the README's example), importable from tests/plugins."""
