"""The operator's entry point: `kopf run --standalone -m batchai_operator.main --all-namespaces`.

Importing the handler modules registers them with kopf; nothing else imports them. kopf's index readiness
is made linear in the number of objects, and its watch events lose their managedFields, before kopf starts
(reconcile/kopf_toggles.py, reconcile/kopf_bodies.py).
"""

from .handlers import cluster, indexes, lifecycle, trainingjob
from .reconcile import kopf_bodies, kopf_toggles

kopf_toggles.install()
kopf_bodies.install()

__all__ = ["cluster", "indexes", "lifecycle", "trainingjob"]
