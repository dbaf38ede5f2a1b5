"""Training recipes: pure functions of (config, dataset dir, output dir, callbacks); no torch at import time."""
