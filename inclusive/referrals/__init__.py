"""Referrals of producers to capital partners: states, profiles, and their delivery."""
