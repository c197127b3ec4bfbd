"""Training the FCN family: augmentation, the staged 32s → 16s → 8s recipe, checkpoints (no Qt)."""
