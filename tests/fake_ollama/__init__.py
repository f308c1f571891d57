"""A fake Ollama server (test double) with a control plane under /_fake/."""
