"""The operator's entry point: `kopf run --standalone -m batchai_operator.main --all-namespaces`.

Importing the handler modules registers them with kopf; nothing else imports them.
"""

from .handlers import cluster, indexes, lifecycle, trainingjob

__all__ = ["cluster", "indexes", "lifecycle", "trainingjob"]
