"""augflow: one package per stage (ingest, augment, train, evaluate), the study, decide, orchestration, and common.

The numeric settings come first, before any module can start TensorFlow (docs/layout.md has the map)."""

from tasks.common import numerics  # noqa: F401
