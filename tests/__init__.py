"""The test suite: its folders mirror the project's packages (tests/project holds the whole-project tests)."""
