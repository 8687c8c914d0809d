"""mitmproxy's hook dispatch without the cost of the addons that do not have the hook.

``AddonManager.trigger_event`` walks every entry of the chain on every hook (four a request, and an
``update`` after each), and for each entry creates a coroutine, an error guard (a context manager) and two
generators to find out that, for most entries, there is nothing to call: of the ~35 entries a
``DumpMaster`` has, a request's eight hooks find a method in ~25 entry visits out of ~280, and the walk
cost ~0.3 ms of CPU a request (of ~1.3 ms, at concurrency 16 on the 2-core dev machine).

``LeanAddonManager`` looks the hook up first and skips an entry that has none, of its own or in its
sub-addons; an entry that has one is invoked exactly as mitmproxy invokes it, in chain order, under the
same guard, and ``AddonHalt`` still stops the rest.
"""

from __future__ import annotations

from mitmproxy import addonmanager, exceptions, hooks

__all__ = ["LeanAddonManager", "lean_dispatch"]


class LeanAddonManager(addonmanager.AddonManager):
    """An ``AddonManager`` whose ``trigger_event`` skips entries without the hook (it adds no state)."""

    async def trigger_event(self, event: hooks.Hook) -> None:
        name = event.name
        for entry in self.chain:
            try:  # _has_hook's first test inlined: it runs ~280 times a request
                found = getattr(entry, name, None) or (hasattr(entry, "addons") and _has_hook(entry, name))
            except Exception:  # noqa: BLE001 - invoke_addon meets the same failure under its guard, which logs it
                found = True
            if not found:
                continue
            try:
                with addonmanager.safecall():
                    await self.invoke_addon(entry, event)
            except exceptions.AddonHalt:
                return


def lean_dispatch(manager: addonmanager.AddonManager) -> None:
    """Make a master's ``AddonManager`` (created by ``Master.__init__``, so not ours to construct) lean."""
    manager.__class__ = LeanAddonManager


def _has_hook(addon: object, name: str) -> bool:
    """Whether ``invoke_addon`` would find anything named ``name`` in ``addon`` or its sub-addons (as
    ``addonmanager.traverse`` walks them); a lookup that fails says yes, so that mitmproxy reports it."""
    try:
        if getattr(addon, name, None):
            return True
        return hasattr(addon, "addons") and any(_has_hook(child, name) for child in addon.addons)
    except Exception:  # noqa: BLE001 - as in trigger_event
        return True
