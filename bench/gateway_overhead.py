"""What the gateway costs a request: req/s and latency direct, through bare mitmproxy, and through modelgate.

    python bench/gateway_overhead.py [--seconds 5] [--rounds 3] [--dir DIR] [--json]

One run, one fast local upstream (a raw asyncio HTTP/1.1 server answering every POST with the same small
OpenAI chat completion), three ways to reach it, each at concurrency 1 and 16:

- ``direct``: the load generator talks to the upstream;
- ``mitmproxy``: a ``DumpMaster`` in reverse mode with the options the gateway gives it and no modelgate
  addon: what mitmproxy itself costs, with its own hook dispatch (the gateway's skips the addons that lack
  a hook, ``gateway.dispatch``: part of what modelgate adds is paid for by what it saves there);
- ``modelgate``: ``modelgate gateway run`` (agent keys, policy, the audit log on SQLite with its default
  durability, ``synchronous=FULL``: each request's record is committed before it is forwarded).

Both proxies run side by side in front of the same upstream, and their runs alternate, ``--rounds`` times
(each going first in turn), after a warm-up of each: on a machine shared with other work, load that comes
and goes then falls on both alike. Figures are the median of the rounds.

Targets: modelgate keeps >= 0.8x bare mitmproxy's throughput under load (concurrency 16), and adds <= 1 ms
to its p50 at concurrency 1. The throughput ratio at concurrency 1 is printed too, but it is the latency
target seen another way (one request at a time, req/s is 1/latency): 0.8x of a proxy that answers in 0.9 ms
would leave 0.2 ms for policy, detection and a durable commit, and the separate 1 ms allowance would mean
nothing. So the throughput target is judged where throughput is the question, under concurrent load.
Afterwards every request id the upstream saw must have its audit record, and there must be at least as many
request records as the load generator got answers: zero missing; and no run may have had an error or a
non-2xx answer. Exit 1 if a target is missed, a record is, or a run failed.

The load generator is ``wrk`` (``apt-get install wrk``), keep-alive connections on one thread: an epoll loop
in C costs a few percent of a core where a Python client would take a good part of one of this machine's
two, and it reports latency percentiles. Every process's CPU use is printed beside its figures, so a load
generator or upstream that competes with the proxy for the CPU shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 16)
TARGET_THROUGHPUT = 0.8
THROUGHPUT_AT = 16
"""The concurrency the throughput target is judged at (see the module's docstring)."""
TARGET_ADDED_P50_MS = 1.0
POLICY = """
version: 1
name: bench
gateway:
  profiles: [{name: default, models: ["bench-*"]}]
"""
REQUEST = json.dumps({"model": "bench-1", "messages": [{"role": "user", "content": "What is the capital of France?"}],
                      "max_tokens": 16})
ANSWER = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "bench-1",
                     "choices": [{"index": 0, "finish_reason": "stop", "message": {
                         "role": "assistant", "content": "Paris is the capital of France."}}],
                     "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21}}).encode()
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# -- the upstream -------------------------------------------------------------------------------------


class _Upstream(asyncio.Protocol):
    """HTTP/1.1 keep-alive, just enough of it: read a head and its Content-Length body, answer ANSWER."""

    seen: list[str] = []
    _reply = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER)
              + ANSWER)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"x-modelgate-request-id":
                    self.seen.append(value.strip().decode())
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(self._reply)  # type: ignore[attr-defined]


async def serve_upstream(port: int, ids: Path) -> None:
    """Until SIGTERM; then the request ids it saw go to ``ids``, one a line."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Upstream, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()
    ids.write_text("".join(f"{rid}\n" for rid in _Upstream.seen))


async def serve_bare_mitmproxy(port: int, upstream: str, home: Path, policy: Path) -> None:
    """mitmproxy as the gateway embeds it (same modes and options), with none of modelgate's addons."""
    from mitmproxy.tools.dump import DumpMaster

    from gateway.proxy import GatewayConfig
    from policies.loader import load_policy

    config = GatewayConfig(policy=load_policy(policy), upstream=upstream, reverse_listen=("127.0.0.1", port),
                           proxy_listen=None, home=home)
    master = DumpMaster(config.options(), with_termlog=False, with_dumper=False)
    master.options.update(**config.addon_options())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, master.shutdown)
    await master.run()


# -- the driver -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _process(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, once it accepts connections on ``port``; stopped with SIGTERM on the way out."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out,
                                   env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command[2:4]} exited with {process.returncode}; see {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[2:4]} did not listen on {port} within 60s; see {log}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s", "-s",
                           str(script), url], capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))
    result = json.loads(line)
    result["wrk_cpu_pct"] = round((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / wall * 100)
    return result


def _run(name: str, url: str, script: Path, concurrency: int, seconds: float,
         servers: dict[str, int]) -> dict[str, Any]:
    """One wrk run, with the CPU every server process used meanwhile and the CPU time the proxy (direct: the
    upstream) spent per request, which other load on the machine disturbs least."""
    cpu_before = {role: _cpu_s(pid) for role, pid in servers.items()}
    run = _wrk(url, script, concurrency, seconds)
    wall = run["duration_us"] / 1e6
    cpu = {role: _cpu_s(pid) - cpu_before[role] for role, pid in servers.items()}
    return {
        "target": name, "concurrency": concurrency, "requests": run["requests"], "errors": run["errors"],
        "req_per_s": round(run["requests"] / wall, 1), "p50_ms": run["p50_us"] / 1e3, "p99_ms": run["p99_us"] / 1e3,
        "cpu_pct": {"wrk": run["wrk_cpu_pct"], **{role: round(s / wall * 100) for role, s in cpu.items()}},
        "cpu_ms_per_request": round(cpu.get("proxy", cpu["upstream"]) / max(run["requests"], 1) * 1e3, 3),
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one (target, concurrency) as one row: counts summed, figures the median of the rounds."""
    row = dict(runs[0]) | {"rounds": len(runs), "requests": sum(r["requests"] for r in runs),
                           "errors": sum(r["errors"] for r in runs)}
    for key in ("req_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request"):
        row[key] = statistics.median(r[key] for r in runs)
    row["cpu_pct"] = {role: round(statistics.median(r["cpu_pct"][role] for r in runs)) for role in row["cpu_pct"]}
    return row


def bench(folder: Path, seconds: float, rounds: int) -> dict[str, Any]:
    from sqlalchemy import select

    from gateway.audit.agents import add_agent
    from gateway.audit.db import open_database
    from gateway.audit.models import Record

    load = round(os.getloadavg()[0], 2)
    home, policy, ids = folder / "home", folder / "policy.yaml", folder / "upstream-ids"
    policy.write_text(POLICY)
    db = open_database(None, home=home)
    key = add_agent(db, "bench").key
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT % (REQUEST, key))
    me = [sys.executable, str(Path(__file__).resolve())]
    up_port, bare_port, gate_port, admin_port = (_free_port() for _ in range(4))
    upstream = f"http://127.0.0.1:{up_port}"
    proxies = {
        "mitmproxy": [*me, "--role", "mitmproxy", "--port", str(bare_port), "--upstream", upstream, "--state-dir",
                      str(folder / "bare"), "--policy", str(policy)],
        "modelgate": [sys.executable, "-m", "modelgate", "gateway", "run", "--policy", str(policy), "--upstream",
                      upstream, "--upstream-key-env", "", "--no-engine-check", "--state-dir", str(home), "--listen",
                      f"127.0.0.1:{gate_port}", "--proxy-listen", "off", "--admin-listen", f"127.0.0.1:{admin_port}"],
    }
    urls = {"mitmproxy": f"http://127.0.0.1:{bare_port}/v1/chat/completions",
            "modelgate": f"http://127.0.0.1:{gate_port}/v1/chat/completions"}
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with _process([*me, "--role", "upstream", "--port", str(up_port), "--ids", str(ids)], up_port,
                  folder / "upstream.log") as up:
        direct = f"{upstream}/v1/chat/completions"
        _wrk(direct, script, 16, 1)
        for concurrency in CONCURRENCY:
            runs[("direct", concurrency)] = [_run("direct", direct, script, concurrency, seconds, {"upstream": up.pid})]
        with (_process(proxies["mitmproxy"], bare_port, folder / "mitmproxy.log") as bare,
              _process(proxies["modelgate"], gate_port, folder / "modelgate.log") as gate):
            pids = {"mitmproxy": bare.pid, "modelgate": gate.pid}
            for name in pids:
                _wrk(urls[name], script, 16, 1)  # warm-up, not counted
            for n in range(rounds):  # interleaved, each first in turn: the machine's other load hits both alike
                for concurrency in CONCURRENCY:
                    for name in (("mitmproxy", "modelgate") if n % 2 == 0 else ("modelgate", "mitmproxy")):
                        runs.setdefault((name, concurrency), []).append(_run(
                            name, urls[name], script, concurrency, seconds, {"proxy": pids[name], "upstream": up.pid}))
    rows = [_median(runs[(name, c)]) for name in ("direct", "mitmproxy", "modelgate") for c in CONCURRENCY]
    answered = sum(r["requests"] - r["errors"] for r in rows if r["target"] == "modelgate")
    forwarded = set(ids.read_text().split())
    with db.sessions() as session:
        recorded = set(session.scalars(select(Record.request_id).where(Record.kind == "request")))
    db.close()
    by = {(r["target"], r["concurrency"]): r for r in rows}
    throughput = {f"c{c}": round(by[("modelgate", c)]["req_per_s"] / by[("mitmproxy", c)]["req_per_s"], 3)
                  for c in CONCURRENCY}
    added = round(by[("modelgate", 1)]["p50_ms"] - by[("mitmproxy", 1)]["p50_ms"], 3)
    audit = {"answered_measured": answered, "forwarded": len(forwarded), "recorded": len(recorded),
             "missing": len(forwarded - recorded)}
    return {
        "seconds": seconds, "rounds": rounds, "cpus": os.cpu_count(), "load_before": load, "results": rows,
        "modelgate_vs_mitmproxy_throughput": throughput,
        "added_p50_ms_c1": {"vs_mitmproxy": added,
                            "vs_direct": round(by[("modelgate", 1)]["p50_ms"] - by[("direct", 1)]["p50_ms"], 3)},
        "audit": audit,
        "targets_met": {"throughput": throughput[f"c{THROUGHPUT_AT}"] >= TARGET_THROUGHPUT,
                        "added_p50": added <= TARGET_ADDED_P50_MS,
                        "zero_missing": audit["missing"] == 0 and audit["recorded"] >= answered,
                        "no_errors": all(r["errors"] == 0 for r in rows)},
    }


def report(result: dict[str, Any]) -> None:
    print(f"gateway overhead, {result['seconds']:g}s per run, median of {result['rounds']} interleaved rounds, "
          f"{result['cpus']} CPUs (load average {result['load_before']} before), load generator wrk -t1")
    print(f"{'target':>10} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'cpu ms/req':>10}  cpu %")
    for r in result["results"]:
        cpu = ", ".join(f"{role} {pct}" for role, pct in r["cpu_pct"].items())
        print(f"{r['target']:>10} {r['concurrency']:>4} {r['req_per_s']:>9.1f} {r['p50_ms']:>8.3f} "
              f"{r['p99_ms']:>8.3f} {r['errors']:>6} {r['cpu_ms_per_request']:>10.3f}  {cpu}")
    met = result["targets_met"]
    ratios = ", ".join(f"{c} {v:.2f}x" for c, v in result["modelgate_vs_mitmproxy_throughput"].items())
    print(f"modelgate / mitmproxy throughput: {ratios}; target >= {TARGET_THROUGHPUT}x at c{THROUGHPUT_AT}: "
          f"{'met' if met['throughput'] else 'NOT met'}")
    added = result["added_p50_ms_c1"]
    print(f"added p50 at concurrency 1: {added['vs_mitmproxy']:.3f} ms over mitmproxy "
          f"({added['vs_direct']:.3f} ms over direct); target <= {TARGET_ADDED_P50_MS} ms: "
          f"{'met' if met['added_p50'] else 'NOT met'}")
    audit = result["audit"]
    print(f"audit: {audit['answered_measured']} answered in the measured runs, {audit['forwarded']} forwarded, "
          f"{audit['recorded']} recorded, {audit['missing']} missing: {'ok' if met['zero_missing'] else 'FAILED'}")
    if not met["no_errors"]:
        print("errors: some runs got errors or non-2xx answers; their figures do not measure the gateway")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each measured run.")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds of mitmproxy and modelgate runs.")
    parser.add_argument("--dir", type=Path, help="Folder for the state and logs (default: a temporary one).")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--role", choices=("upstream", "mitmproxy"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", dest="home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--policy", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ids", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "upstream":
        asyncio.run(serve_upstream(args.port, args.ids))
        return 0
    if args.role == "mitmproxy":
        asyncio.run(serve_bare_mitmproxy(args.port, args.upstream, args.home, args.policy))
        return 0
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        result = bench(Path(tmp), args.seconds, max(1, args.rounds))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
