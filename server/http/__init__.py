"""HTTP at the edge: the connection protocol, and the middleware that opens and closes every request."""
