"""augflow's stages: one module each (ingest, augment, train, evaluate), plus what they share."""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) buries the stage's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A fixed number of threads per TensorFlow op, never the machine's cores: a reduction split over
# N threads can add in another order, so a run's numbers would otherwise depend on the machine
# and on how many runs share it (`make run JOBS=N`). Two threads per op trained the same models
# as one, bit for bit, in 0.77 to 0.95 of one thread's time (docs/parallel.md); oneDNN's kernels
# take their threads from this pool. Set before TensorFlow starts; docs/guarantees.md says what this buys.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")
for _variable in ("TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
# oneDNN picks its kernels by the CPU's instructions, and an AVX-512 kernel adds in another order
# than an AVX2 one (benchmarks/numerics.py): capped at AVX2, AVX2 and AVX-512 machines agree.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
