"""An SMTP sink for the alert tests: aiosmtpd (from PyPI, an SMTP server we did not write) on 127.0.0.1 with a free
port. Prints `smtp-sink listening on 127.0.0.1:<port>`, then one JSON line per message received:
{"from": ..., "to": [...], "data": "<the message as sent>"}. Runs until killed.

.ci/test installs aiosmtpd into target/smtp-venv and exports SMTP_SINK_PYTHON.
"""
import asyncio
import json

from aiosmtpd.smtp import SMTP


class Handler:
    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos, "data": content}), flush=True)
        return "250 Message accepted for delivery"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler(), hostname="sink.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"smtp-sink listening on 127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
