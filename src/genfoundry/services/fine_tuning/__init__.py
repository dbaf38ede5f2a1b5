"""Fine-tuning: one `FineTuningMethod` per `method.type` (registry.py), the service the API and CLI use."""
