"""Tests of the server package: admin CLI, services, app."""
