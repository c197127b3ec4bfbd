"""Datasets for training and evaluation (no Qt)."""
