"""The local OpenAI-compatible server: `slmdesk serve` (and, later, the window's switch).

Modules: `errors` (the OpenAI error shape), `schemas` (request bodies), `inference` (the one
inference thread and its FIFO queue), `replies` (response and stream chunk bodies), `guards`
(API key and body size), `app` (the FastAPI application), `runner` (uvicorn on a socket).
No Qt here, so the window can run the same server on a thread.
"""
