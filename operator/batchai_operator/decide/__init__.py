"""Pure decisions: what was observed of an object's world -> the actions to take, its new status (typed,
from the API models) and the Events to post. No I/O here; reconcile/ observes and applies."""
