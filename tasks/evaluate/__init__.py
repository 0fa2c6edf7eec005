"""The evaluate stage: every model on the held-out test split, the verdict and the report."""
