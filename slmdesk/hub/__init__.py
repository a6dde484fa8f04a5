"""The Hugging Face Hub: search, file listings, the token, resumable verified downloads."""
