"""Packaged data files: catalog.toml, styles.toml."""
