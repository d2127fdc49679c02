"""Reads a ZKTeco device with pyzk (an implementation we did not write) and prints what it got as JSON.

Usage: read_device.py HOST PORT KEY tcp|udp [attendance-only]
Used by tests/tests/zk_pyzk.rs (interop) and the zk-read bench (timing, printed as "seconds").
"""
import json
import sys
import time

from zk import ZK


def main():
    host, port, key, transport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    attendance_only = len(sys.argv) > 5 and sys.argv[5] == "attendance-only"
    zk = ZK(host, port=port, timeout=20, password=key, force_udp=(transport == "udp"), ommit_ping=True)
    conn = zk.connect()
    try:
        out = {}
        if not attendance_only:
            out["serial"] = conn.get_serialnumber()
            out["time"] = conn.get_time().isoformat()
            out["users"] = [
                {"uid": u.uid, "user_id": u.user_id, "name": u.name, "privilege": u.privilege, "card": u.card}
                for u in conn.get_users()
            ]
        started = time.perf_counter()
        attendance = conn.get_attendance()
        out["seconds"] = time.perf_counter() - started
        out["attendance"] = [
            {"user_id": a.user_id, "timestamp": a.timestamp.isoformat(), "verify": a.status, "state": a.punch}
            for a in attendance
        ]
    finally:
        conn.disconnect()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
