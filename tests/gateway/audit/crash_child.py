"""The process the crash test kills: 16 tasks record requests as fast as they can and print each id
once ``record_request`` has returned, which is the moment the proxy would forward the request. The writer is
an ``AuditWriter`` on a thread, or an ``AuditProcess`` (``process``: the one the gateway uses)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.audit.process import AuditProcess
from gateway.audit.writer import AuditWriter, WriterConfig
from tests.gateway.audit.conftest import request_event, response_event


async def worker(writer: AuditWriter | AuditProcess, task: int) -> None:
    n = 0
    while True:
        request_id = f"t{task}-{n}"
        await writer.record_request(request_event(0, request_id=request_id), body=b'{"messages": []}')
        print(request_id, flush=True)
        writer.record_response(response_event(0, request_id=request_id))
        n += 1


async def main(url: str, home: Path, front: str) -> None:
    opener = AuditProcess.open if front == "process" else AuditWriter.open
    writer = opener(url, home=home, config=WriterConfig(checkpoint_every=50))
    print("ready", flush=True)
    await asyncio.gather(*(worker(writer, task) for task in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
