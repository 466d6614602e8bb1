"""Destinations: how a request reaches a service and how its answer is read, one module per service."""
