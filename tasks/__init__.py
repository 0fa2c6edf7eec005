"""augflow's stages: one module each (ingest, augment, train, evaluate), plus what they share."""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) buries the stage's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
