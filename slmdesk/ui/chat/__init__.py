"""The Chat page: conversations, streaming replies, the model picker and chat settings."""
