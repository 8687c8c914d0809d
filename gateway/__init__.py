"""The mitmproxy-based gateway in front of the engine and in front of agents' outbound calls.

It sits at the top of the dependency graph (gateway -> engine -> attest, sbom -> policies); its proxy,
detectors and audit database arrive with the gateway issue.
"""
