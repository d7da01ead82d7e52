# A real SMTP server for tests (aiosmtpd, Debian's python3-aiosmtpd): every accepted message is
# written to OUT_DIR as one file (envelope lines, then the message as received), renamed into
# place once complete. Recipients whose local part starts with "reject" get a permanent 550,
# those starting with "later" a temporary 451. SMTPUTF8 is offered when the fourth argument is 1.
#
#   /usr/bin/python3 smtp_sink.py HOST PORT OUT_DIR SMTPUTF8
import asyncio
import os
import sys
import time

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        name = "%d-%d.eml" % (time.time_ns(), self.n)
        tmp = os.path.join(self.out, "." + name)
        head = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
        )
        with open(tmp, "wb") as f:
            f.write(head.encode("utf-8"))
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.out, name))
        return "250 2.0.0 accepted"


async def main():
    host, port, out, utf8 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(out), enable_SMTPUTF8=utf8, decode_data=False),
        host,
        port,
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
