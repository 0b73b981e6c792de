"""The controller: one runtime for both kinds, and for each kind a straight-line sync
(observe from the indexes -> pure decide -> one status patch -> apply the actions)."""
