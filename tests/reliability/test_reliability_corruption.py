"""Must show 4: a spool left behind with a record's bytes flipped and its last record torn in half.
The next start quarantines exactly the two bad parts, ships every good record, and `tracewire
doctor` reports the damage before and the quarantine after."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from rel_harness import TRACEWIRE, Collector, free_port, run_producer

from tracewire.delivery.records import HEADER_BYTES, Record, read_records


def _doctor(collector: Collector, spool: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env.update({"TRACEWIRE_ENDPOINT": collector.url, "TRACEWIRE_API_KEY": collector.api_key,
                "TRACEWIRE_SIGNING_KEY": collector.signing_key, "TRACEWIRE_SPOOL_DIR": str(spool),
                "TRACEWIRE_DB": str(spool.parent / "local.db")})
    out = subprocess.run([TRACEWIRE, "doctor", "--json"], capture_output=True, env=env, timeout=60)
    text = out.stdout.decode()
    assert collector.api_key not in text and collector.signing_key not in text  # never shown
    report: dict[str, Any] = json.loads(text)
    # damage in the spool needs fixing (replayed, then the quarantine looked at): exit 1
    assert out.returncode == 1 and report["verdict"] == "needs fixing", out.stderr.decode()
    return report


def test_torn_and_flipped_spool_is_quarantined_and_the_rest_shipped(collector: Collector, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    nowhere = {"sink": "http", **collector.settings(f"http://127.0.0.1:{free_port()}"), "spool_dir": str(spool)}
    left = run_producer({"settings": nowhere, "tag": "corrupt", "n": 400, "rate": 2000, "exit": "abandon"})
    (seg,) = [p for p in spool.iterdir() if p.name.startswith("seg-")]
    fd = os.open(seg, os.O_RDWR)
    try:
        records = [r for r in read_records(fd, 0, os.fstat(fd).st_size) if isinstance(r, Record)]
        assert len(records) >= 5, len(records)
        flipped, torn = records[2], records[-1]
        os.pwrite(fd, bytes([flipped.payload[40] ^ 0x5A]), flipped.offset + HEADER_BYTES + 40)  # flip a byte
        os.ftruncate(fd, torn.offset + HEADER_BYTES + len(torn.payload) // 2)  # torn mid-record
    finally:
        os.close(fd)

    def names(rec: Record) -> set[str]:
        return {n for line in rec.payload.split(b"\n") if (n := json.loads(line)["name"]).startswith("corrupt:")}

    good = set().union(*(names(r) for r in records if r not in (flipped, torn)))
    bad = names(flipped) | names(torn)

    before = _doctor(collector, spool)
    assert before["spool"]["damaged_spans"] == 2 and before["spool"]["pending_records"] == len(records) - 2, before
    assert before["endpoint"]["ok"] and before["endpoint"]["auth"] == "ok", before["endpoint"]

    settings = {"sink": "http", **collector.settings(), "spool_dir": str(spool)}
    drain = run_producer({"settings": settings, "tag": "corrupt-drain", "n": 0, "flush_timeout": 60})
    stored = collector.stored(left["trace_id"], "corrupt:")
    assert set(stored) == good and not set(stored) & bad and max(stored.values()) == 1
    dl = drain["stats"]["delivery"]["http"]
    assert dl["quarantined"] == {"crc": 1, "torn": 1}, dl
    assert not drain["stats"]["internal_errors"], drain["stats"]

    after = _doctor(collector, spool)
    q = after["spool"]["quarantine"]
    print(f"\ncorruption: {len(records)} records ({len(good)} good events shipped, {len(bad)} quarantined); "
          f"doctor: quarantine {q}")
    assert q["files"] == 2 and q["by_reason"] == {"crc": 1, "torn": 1}, q
    assert after["spool"]["segments"] == 0 and after["spool"]["pending_events"] == 0, after["spool"]
