"""Building blocks shared by the model families: they know tensors, not checkpoints or configs."""
