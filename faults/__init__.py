"""Fault injection against a real stack: `make faults` (python -m faults); see faults.__main__."""
