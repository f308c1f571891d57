"""The operator's side: the fire CLI and the service layer under it."""
