"""The operator's entry point: `kopf run --standalone -m batchai_operator.main --all-namespaces`.

Importing the handler modules registers them with kopf; nothing else imports them. kopf's index readiness
is made linear in the number of objects before kopf starts (reconcile/kopf_toggles.py).
"""

from .handlers import cluster, indexes, lifecycle, trainingjob
from .reconcile import kopf_toggles

kopf_toggles.install()

__all__ = ["cluster", "indexes", "lifecycle", "trainingjob"]
