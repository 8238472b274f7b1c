"""Limits on one user turn, shared by the engine and its front ends without importing the engine."""

MAX_INPUT_CHARS = 20_000
"""The longest message a turn accepts, in characters; a longer one is refused, never kept."""
