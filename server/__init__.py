"""The gateway: app factory and worker lifecycle; http, stores, auth, relay, accounting, observe, admin."""
