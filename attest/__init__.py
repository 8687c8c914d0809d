"""Signing and verification of model artifacts (Sigstore bundles, DSSE, in-toto)."""
