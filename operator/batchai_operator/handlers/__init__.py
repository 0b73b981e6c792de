"""kopf registrations only: each handler is one call into reconcile/. Imported by main.py alone."""
