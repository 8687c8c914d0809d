"""The tamper-evident audit database: every request recorded, durably, before it is forwarded.

    import asyncio
    from gateway.audit import AuditState, AuditWriter, default_home, open_database, verify_audit
    from gateway.events import RequestEvent

    writer = AuditWriter.open()                # $MODELGATE_HOME/audit.db; or a postgresql+psycopg:// URL
    event = RequestEvent(request_id="r1", agent="ci-bot", session="s1", protocol="http", direction="forward",
                         method="GET", scheme="https", host="example.com", port=443, path="/")
    committed = asyncio.run(writer.record_request(event))    # returns once the row is committed
    writer.close()                             # flush; a final checkpoint, signed and witnessed
    report = verify_audit(open_database(), state=AuditState.open(default_home()))  # or AuditTampered

Records are hash-chained per gateway instance and every commit is sealed with the instance's key;
checkpoints also go to a witness file in the state folder, so a rewritten or truncated log is detected
(``verify_audit``). ``AgentStore`` answers "which agent holds this API key" from memory.
"""

from gateway.audit.agents import Agent, AgentStore, add_agent, list_agents, revoke_agent
from gateway.audit.db import AuditDatabase, default_home, open_database
from gateway.audit.query import RequestFilter, list_requests, model_loads, request_detail, session_timeline, stats
from gateway.audit.retention import PruneResult, prune
from gateway.audit.state import AuditState
from gateway.audit.storage import Committed
from gateway.audit.verify import Problem, VerifyReport, verify_audit
from gateway.audit.writer import AuditWriter, WriterConfig

__all__ = [
    "Agent",
    "AgentStore",
    "AuditDatabase",
    "AuditState",
    "AuditWriter",
    "Committed",
    "Problem",
    "PruneResult",
    "RequestFilter",
    "VerifyReport",
    "WriterConfig",
    "add_agent",
    "default_home",
    "list_agents",
    "list_requests",
    "model_loads",
    "open_database",
    "prune",
    "request_detail",
    "revoke_agent",
    "session_timeline",
    "stats",
    "verify_audit",
]
