"""Conversations: the SQLite store and the chat session used by the window, the A/B view and the
CLI."""
