"""The operator's entry point for `kopf run -m batchai_operator.main`: registers every handler module."""

from . import cluster_handlers, handlers

__all__ = ["cluster_handlers", "handlers"]
