"""The admin UI and ``/metrics``, served by the gateway process on its own loopback listener.

Reviewers read the audit log (requests, details with evidence in place, session timelines, model
loads, chain integrity), approve or reject quarantined MCP tools (each decision audited), and watch
block and alert rates; Prometheus scrapes ``/metrics``. ``run_gateway`` starts it when
``GatewayConfig.admin_listen`` is set (the default, 127.0.0.1:8090); the admin token is generated into
the state folder:

    >>> config = GatewayConfig(policy=shipped_policy("dev"), admin_listen=("127.0.0.1", 8090))  # doctest: +SKIP
    >>> with BackgroundGateway(config) as gateway:                                             # doctest: +SKIP
    ...     token = (config.state_dir / "admin-token").read_text().strip()
    ...     httpx.get(f"{gateway.admin_url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
"""
