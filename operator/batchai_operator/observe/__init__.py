"""What the operator sees, read only: slim views of API objects (views.py), kopf's in-memory indexes of
them (indexes.py), each kind's memory of its own actions (memory.py), and per kind the world its decision
is made from (trainingjob.py, cluster.py). Nothing here writes: reconcile/ does."""
