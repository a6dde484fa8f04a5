"""The Qt (PySide6) user interface. Views lay out widgets; controllers wire them to the core."""
