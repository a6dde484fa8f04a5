"""Plumbing every other package may use: errors, paths, atomic files, logs, resources, settings,
formatting. Imports nothing else from slmdesk."""
