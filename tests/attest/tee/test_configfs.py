"""The configfs-tsm provider against a stand-in for the kernel's report entry.

There is no confidential guest here, so a small in-process stand-in plays the kernel's part: when the
provider creates its entry, the stand-in fills in the attributes, answers the report data written to
``inblob`` through ``outblob`` (a FIFO, so the read waits for the answer as it does on the kernel's
file) and counts the writes in ``generation``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from attest.errors import AttestError
from attest.tee.configfs import ConfigfsTsmProvider


class _StandInKernel(ConfigfsTsmProvider):
    def __init__(self, root: Path, *, provider: str = "sev_guest", extra_writes: int = 0,
                 auxblob: bytes | None = b"certificate table", **kwargs: object) -> None:
        super().__init__(root, **kwargs)  # type: ignore[arg-type]
        self.answer_provider, self.extra_writes, self.auxblob = provider, extra_writes, auxblob
        self.seen: list[bytes] = []
        self.removed: list[Path] = []

    def _create_entry(self) -> Path:
        entry = super()._create_entry()
        (entry / "generation").write_text("7\n")
        (entry / "provider").write_text(self.answer_provider + "\n")
        if self.auxblob is not None:
            (entry / "auxblob").write_bytes(self.auxblob)
        os.mkfifo(entry / "outblob")
        threading.Thread(target=self._answer, args=(entry,), daemon=True).start()
        return entry

    def _answer(self, entry: Path) -> None:
        inblob = entry / "inblob"
        deadline = time.monotonic() + 10
        while not (inblob.exists() and inblob.stat().st_size == 64) and time.monotonic() < deadline:
            time.sleep(0.005)
        data = inblob.read_bytes()
        self.seen.append(data)
        writes = 2 if self.privlevel is not None else 1
        (entry / "generation").write_text(f"{7 + writes + self.extra_writes}\n")
        with open(entry / "outblob", "wb") as out:
            out.write(b"REPORT:" + data)

    def _remove_entry(self, entry: Path) -> None:
        self.removed.append(entry)
        for child in entry.iterdir():
            child.unlink()
        super()._remove_entry(entry)


def test_the_report_answers_the_report_data_and_carries_the_certificate_table(tmp_path: Path) -> None:
    kernel = _StandInKernel(tmp_path, extra={"vcek": b"vcek-der"})
    (item,) = kernel.collect(b"\x42" * 64)
    assert item.platform == "sev-snp" and kernel.seen == [b"\x42" * 64]
    assert item.parts["report"] == b"REPORT:" + b"\x42" * 64
    assert item.parts["auxblob"] == b"certificate table" and item.parts["vcek"] == b"vcek-der"
    assert kernel.removed and not kernel.removed[0].exists()


def test_tdx_guests_give_a_quote_and_privlevel_counts_as_a_write(tmp_path: Path) -> None:
    kernel = _StandInKernel(tmp_path, provider="tdx_guest", auxblob=None, privlevel=0)
    (item,) = kernel.collect(b"\x01" * 64)
    assert item.platform == "tdx" and set(item.parts) == {"quote"}
    assert kernel.removed[0].name.startswith("modelgate-")


def test_a_concurrent_writer_is_detected(tmp_path: Path) -> None:
    kernel = _StandInKernel(tmp_path, extra_writes=1)
    with pytest.raises(AttestError, match="another process wrote to the configfs-tsm report entry"):
        kernel.collect(b"\x00" * 64)
    assert kernel.removed  # the entry is removed on failure too


def test_an_unknown_tee_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AttestError, match="provider 'arm_cca_guest' is not one modelgate verifies"):
        _StandInKernel(tmp_path, provider="arm_cca_guest").collect(b"\x00" * 64)


def test_a_machine_without_configfs_tsm_says_so(tmp_path: Path) -> None:
    assert not ConfigfsTsmProvider.available(tmp_path / "absent")
    with pytest.raises(AttestError, match="cannot create a configfs-tsm report entry"):
        ConfigfsTsmProvider(tmp_path / "absent").collect(b"\x00" * 64)
