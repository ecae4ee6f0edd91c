"""Inference from checkpoints: plain PyTorch, no Lightning needed."""
