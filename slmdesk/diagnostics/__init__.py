"""Self-checks of an install (`slmdesk doctor`)."""
