"""The prompt router: a shared sentence encoder (all-MiniLM-L6-v2) and small classifier heads over its embeddings.

No FastAPI, no database: `encoder` embeds text, `head` holds a trained head (format, load, save, predict),
`train` is the recipe that fits one, `baselines` the keyword and zero-shot rules the benchmark compares against.
"""
