"""Fault injection against real processes (`make faults`); not a test, not shipped."""
