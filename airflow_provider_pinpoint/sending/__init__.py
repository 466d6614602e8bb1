"""Requests out, decisions back: the engine, its retries and its rate limit."""
