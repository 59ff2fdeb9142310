"""Compiling a verified model into a pytest conformance pack."""
