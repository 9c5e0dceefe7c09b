"""Dataset creation, input pipeline, models and training (needs the [train] extra)."""
