"""The performance benchmark: `make bench` (not a test; it stays out of CI)."""
