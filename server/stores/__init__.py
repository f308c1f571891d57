"""Where the gateway keeps things: the database (Tortoise, migrations) and Redis clients."""
