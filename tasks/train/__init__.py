"""The train stage: one model per (arm, seed), on that arm's training set."""
