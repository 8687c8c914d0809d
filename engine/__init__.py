"""The inference engine: loads only verified weights. For now: the default model cache."""
