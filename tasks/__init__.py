"""augflow's stages: one module each (ingest, augment, train, evaluate), plus what they share."""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) buries the stage's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# One thread per TensorFlow op: a reduction split over N threads adds in another order, so a
# run's numbers would depend on the machine's cores and on how many runs share them
# (`make run JOBS=N`). Set before TensorFlow starts; docs/guarantees.md says what this buys.
for _variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
# oneDNN picks its kernels by the CPU's instructions, and an AVX-512 kernel adds in another order
# than an AVX2 one (benchmarks/numerics.py): capped at AVX2, AVX2 and AVX-512 machines agree.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
