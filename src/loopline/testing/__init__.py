"""Helpers and contract checks for testing loopline and its backends.

``loopline.testing.postgres`` starts throw-away PostgreSQL servers and hands out
isolated schemas, so store tests run against a real server. Submodules import
lazily: importing this package pulls in nothing heavy.
"""
