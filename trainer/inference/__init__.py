"""Inference: batched classification of a saved model, option scoring, CoT decoding and reasoning-head decoding."""
