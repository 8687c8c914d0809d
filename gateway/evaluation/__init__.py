"""``modelgate eval``: labelled agent traces replayed through the gateway's own addons, with detection rates."""
