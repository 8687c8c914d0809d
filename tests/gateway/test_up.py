"""``modelgate up`` as a user runs it: a subprocess, the real default model, the engine behind the gateway.

It prints the agent key and a ready-to-paste example, serves the verified and (simulated) attested model
to the real openai client through the gateway, records the model load and the request, stops cleanly on
Ctrl-C, and leaves a log that verifies. Under the production policy the same run is refused, with why.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from sqlalchemy import select

from gateway.audit.db import open_database
from gateway.audit.models import Record
from modelgate.cli import main
from policies.loader import shipped_policy_path
from tests.servers import free_port


def _up(home: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    ports = [str(free_port()) for _ in range(3)]
    command = [sys.executable, "-m", "modelgate", "up", "--state-dir", str(home), "--engine-port", ports[0],
               "--listen", f"127.0.0.1:{ports[1]}", "--proxy-listen", f"127.0.0.1:{ports[2]}", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=os.environ | {"COLUMNS": "200"})
    return process, ports


@pytest.mark.slow
def test_up_serves_the_attested_model_through_the_gateway_and_stops_cleanly(default_model: Path,
                                                                            tmp_path: Path) -> None:
    process, ports = _up(tmp_path / "home")
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(lines)
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        printed = "".join(lines)
        assert "SIMULATED" in printed and f"http://127.0.0.1:{ports[1]}/v1" in printed
        key = re.search(r"key (mgk_[\w-]+)", printed).group(1)  # type: ignore[union-attr]
        assert f"Authorization: Bearer {key}" in printed  # the curl example is ready to paste
        with openai.OpenAI(base_url=f"http://127.0.0.1:{ports[1]}/v1", api_key=key, max_retries=0) as client:
            answer = client.chat.completions.create(model=default_model.name, temperature=0, max_tokens=16,
                                                    messages=[{"role": "user",
                                                               "content": "What is the capital of France?"}])
        assert "Paris" in (answer.choices[0].message.content or "")
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, "".join(lines) + rest
    db = open_database(None, home=tmp_path / "home")
    with db.sessions() as session:
        kinds = [r.kind for r in session.scalars(select(Record).order_by(Record.id))]
    db.close()
    assert "model_load" in kinds and kinds.count("request") == 1 and kinds[-1] == "checkpoint"
    assert main(["audit", "verify", "--state-dir", str(tmp_path / "home")]) == 0


@pytest.mark.slow
def test_up_under_the_production_policy_refuses_a_machine_without_a_tee(default_model: Path,
                                                                        tmp_path: Path) -> None:
    process, _ = _up(tmp_path / "home", "--policy", str(shipped_policy_path("production")))
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 1, out
    assert "the engine refused to start" in out and "simulated evidence" in out and "requires authentic" in out
