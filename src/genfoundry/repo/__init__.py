"""Keyword-only persistence functions per resource."""
