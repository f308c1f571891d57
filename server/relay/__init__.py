"""The relay pipeline: read the body, admit, forward to a backend, stream back, settle."""
