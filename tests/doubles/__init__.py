"""Local test doubles of remote services (named as doubles: they are not the real services)."""
