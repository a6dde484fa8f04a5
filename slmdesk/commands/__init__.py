"""Sub-commands of the ``slmdesk`` CLI, one module per group, each with ``register(sub)``."""
