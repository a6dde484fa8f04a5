"""The Discover page: search the Hub, pick a file that fits, download it."""
