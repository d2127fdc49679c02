"""Reads a ZKTeco device's users and fingerprint templates with pyzk (an implementation we did not write) and prints
them as JSON: {"users": [{uid, user_id, name, privilege, card}], "templates": [{uid, fid, valid, template (hex)}]}.

Usage: read_users.py HOST PORT KEY tcp|udp
Used by tests/tests/zk_users.rs and tests/tests/fleet_users.rs: pyzk must read back what the agent wrote.
"""
import codecs
import json
import sys

from zk import ZK


def main():
    host, port, key, transport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    zk = ZK(host, port=port, timeout=20, password=key, force_udp=(transport == "udp"), ommit_ping=True)
    conn = zk.connect()
    try:
        out = {
            "users": [
                {"uid": u.uid, "user_id": u.user_id, "name": u.name, "privilege": u.privilege, "card": u.card}
                for u in conn.get_users()
            ],
            "templates": [
                {"uid": t.uid, "fid": t.fid, "valid": t.valid, "template": codecs.encode(t.template, "hex").decode()}
                for t in conn.get_templates()
            ],
        }
    finally:
        conn.disconnect()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
