"""HTTP at the edge: the connection protocol and the middleware opening and closing requests."""
