"""Rows to API objects, in one place: the routes, the CLI and the studio all present through these modules."""
