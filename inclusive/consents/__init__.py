"""Consent: a producer's recorded permission to share named data with a capital partner."""
