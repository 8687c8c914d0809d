"""Model families, each one file read top down; they map checkpoint names onto ``engine.layers``."""
