"""The lean hook dispatch calls what mitmproxy's own would call, in its order, with its error handling."""

from __future__ import annotations

import asyncio
import logging

import pytest
from mitmproxy import exceptions, options
from mitmproxy.addonmanager import AddonManager
from mitmproxy.master import Master
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import tflow

from gateway.dispatch import LeanAddonManager, lean_dispatch


class _Recorder:
    def __init__(self, name: str, calls: list[str], *, fail: bool = False, halt: bool = False) -> None:
        self.name, self.calls, self.fail, self.halt = name, calls, fail, halt

    async def request(self, flow: object) -> None:
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} failed")
        if self.halt:
            raise exceptions.AddonHalt()


class _Silent:
    """Has no ``request`` hook."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Parent:
    """Sub-addons only, as ``addonmanager.traverse`` walks them."""

    def __init__(self, name: str, addons: list[object]) -> None:
        self.name, self.addons = name, addons


class _NotCallable:
    name = "not-callable"
    request = "not a hook"

    def __repr__(self) -> str:
        return self.name


def _chain(calls: list[str]) -> list[object]:
    return [_Silent("silent"), _Recorder("first", calls), _Parent("parent", [_Silent("inner-silent"), _Parent(
        "middle", [_Recorder("nested", calls)])]), _Parent("empty", []), _NotCallable(), _Recorder("fails", calls,
        fail=True), _Recorder("after-failure", calls), _Recorder("halts", calls, halt=True), _Recorder("never", calls)]


def _dispatch(lean: bool, caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """The calls one ``request`` hook makes on the chain, and the errors logged, under either dispatch."""
    calls: list[str] = []

    async def run() -> None:
        master = Master(options.Options())
        if lean:
            lean_dispatch(master.addons)
        try:
            master.addons.add(*_chain(calls))
            await master.addons.trigger_event(HttpRequestHook(tflow.tflow()))
        finally:
            master._legacy_log_events.uninstall()  # a logging handler bound to this loop

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        asyncio.run(run())
    return calls, [record.getMessage() for record in caplog.records]


def test_lean_dispatch_calls_and_reports_what_mitmproxy_does(caplog: pytest.LogCaptureFixture) -> None:
    stock = _dispatch(False, caplog)
    assert stock[0] == ["first", "nested", "fails", "after-failure", "halts"]
    assert len(stock[1]) == 2  # the hook that is not callable, and the one that raised
    assert _dispatch(True, caplog) == stock


def test_lean_dispatch_only_changes_the_class() -> None:
    async def run() -> AddonManager:
        master = Master(options.Options())
        master._legacy_log_events.uninstall()
        lean_dispatch(master.addons)
        return master.addons

    manager = asyncio.run(run())
    assert type(manager) is LeanAddonManager and vars(manager).keys() == {"lookup", "chain", "master"}
