"""Model weights: file formats, the registry of known models, downloads (no Qt)."""
