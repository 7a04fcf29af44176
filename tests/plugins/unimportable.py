"""A plug-in module that fails while it is imported."""
import no_such_dependency_of_a_plugin  # noqa: F401


def prune(weights, sparsity):
    return weights
