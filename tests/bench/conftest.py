"""The benchmark is a program (``make bench``), not a test suite: its modules
are not test files, so pytest collects only ``test_*.py`` here, the tests of
the harness itself."""
