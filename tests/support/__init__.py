"""Helpers that start throwaway external services (PostgreSQL, Redis, an OIDC provider) for tests.

Nothing in this package imports pytest; fixtures wrap these classes.
"""
