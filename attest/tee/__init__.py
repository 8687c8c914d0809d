"""Verification of TEE evidence (AMD SEV-SNP, Intel TDX, NVIDIA GPU), offline, at given times."""
