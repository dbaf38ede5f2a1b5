"""`python -m genfoundry` runs the CLI."""

from genfoundry.cli import app

app()
