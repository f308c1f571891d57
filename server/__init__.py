"""The gateway: app factory, worker lifecycle and middleware, and auth, relay, accounting, admin."""
