"""TFX-style components: each reads and writes artifact folders only."""
