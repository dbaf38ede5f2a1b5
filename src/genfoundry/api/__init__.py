"""HTTP API (FastAPI): dependencies, error mapping, routes."""
