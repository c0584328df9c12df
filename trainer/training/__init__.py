"""Training: `DHRDTrainer` and its arguments, the DHRD sequences and collators, the progress line and the model
card."""
