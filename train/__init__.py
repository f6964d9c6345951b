"""hybridzoo training: data preparation (`python -m train.prepare`), loading, and the trainer."""
