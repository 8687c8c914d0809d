"""Local detection of hijacked agents: injected content, hijacked tool calls, behaviour, MCP tool pinning."""
