"""Moving work off the GUI thread: the task pool and the inference thread."""
