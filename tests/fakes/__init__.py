"""Fakes of external systems for tests: real local servers speaking the real protocols."""
