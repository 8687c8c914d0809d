"""The mitmproxy gateway in front of the engine and of agents' outbound calls: identify, judge, record, forward.

    >>> from gateway.proxy import BackgroundGateway, GatewayConfig
    >>> from policies import shipped_policy
    >>> config = GatewayConfig(policy=shipped_policy("dev"), upstream="http://127.0.0.1:8000")
    >>> with BackgroundGateway(config) as gateway:                        # doctest: +SKIP
    ...     print(gateway.reverse_url, gateway.proxy_url)                  # agents: OPENAI_BASE_URL, HTTPS_PROXY
    http://127.0.0.1:8080 http://127.0.0.1:8081

Layers: ``protocols`` (bytes to events, stream guards) and ``detect`` (detectors on events) know nothing
of mitmproxy; ``audit`` is the log; ``addons`` put them into mitmproxy; ``proxy`` runs it; ``up`` runs
everything. It sits at the top of the dependency graph (gateway -> engine -> attest, sbom -> policies).
"""
