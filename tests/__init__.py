"""The test suite (a package, so that tests/support never shadows services/support)."""
