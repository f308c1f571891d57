"""The gateway's services: app factory, auth, relay, accounting, audit and the admin CLI."""
