"""Code that runs only in the optimizer child process (``python -m slmdesk.optimize.child``)."""
