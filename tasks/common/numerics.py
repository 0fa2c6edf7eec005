"""The settings that decide a training run's numbers besides its inputs: threads per op and the kernel path.

Imported first by every augflow module (through tasks/__init__.py), before TensorFlow starts; every stage
that trains depends on this file in dvc.yaml."""

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
# The kernel path, chosen rather than inherited. TensorFlow's x86 wheels switch oneDNN's kernels on by
# default only on CPUs with AVX-512 neural-network instructions, and oneDNN's kernels add in another
# order than TensorFlow's own, so the default follows the machine. Both settings are fixed here: oneDNN
# on everywhere, and capped at AVX2, so that AVX2 and AVX-512 machines run the same kernels and train
# the same models (docs/guarantees.md; tests/project/test_golden.py holds the numbers).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
