"""Ingestion of user data: image checks now; ZIP, URL and JSONL datasets later."""
