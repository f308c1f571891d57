"""Who is calling: API-key format and Argon2id, the principal, the key cache, invalidation."""
