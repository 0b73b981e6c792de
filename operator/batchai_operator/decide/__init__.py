"""Pure decisions: what was observed of an object's world (observe/) and the children its spec asks for
-> its new status (typed, from the API models), the Events to post and the actions to take. No I/O here;
reconcile/ observes, builds the children and applies."""
