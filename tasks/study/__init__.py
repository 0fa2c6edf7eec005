"""The scaling study (`make study`, study/dvc.yaml, a DVC project of its own): test accuracy against training-set size,
per arm, with CI bands. `python -m tasks.study.run` trains one (size, arm, seed); `python -m tasks.study.summary`
gathers the runs."""
