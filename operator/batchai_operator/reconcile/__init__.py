"""The controller: one runtime for both kinds (runtime.py), the one generic sync they plug into
(controller.py: observe -> desired -> decide -> status -> apply), children created through one `ensure`
(children.py), and per kind its observe, desired and apply (trainingjob.py, cluster.py)."""
