"""mitmproxy addons: who is calling (``auth``), where they may go (``egress``), and the gatekeeper that
normalises, judges, records and answers every request (``gatekeeper``)."""
