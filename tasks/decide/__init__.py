"""`make decide`: seeds added in rounds, with a group-sequential rule, until the verdict is decided."""
