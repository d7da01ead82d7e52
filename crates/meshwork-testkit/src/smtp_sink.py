# A real SMTP server for tests (aiosmtpd, Debian's python3-aiosmtpd): every accepted message is
# written to OUT_DIR as one file (envelope lines, then the message as received), renamed into
# place once complete. Recipients whose local part starts with "reject" get a permanent 550,
# those starting with "later" a temporary 451. SMTPUTF8 is offered when the fourth argument is 1.
#
#   /usr/bin/python3 smtp_sink.py HOST PORT OUT_DIR SMTPUTF8 [MODE CERT KEY AUTH]
#
# MODE is plain, starttls (STARTTLS required before mail) or tls (implicit TLS); CERT and KEY are
# PEM files for the TLS modes. AUTH is "-" or "user:password", which then must log in. A
# recipient whose local part starts with "slow" makes the server wait 30 s before answering.
import asyncio
import os
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


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
        if local.startswith("slow"):
            await asyncio.sleep(30)
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
    mode = sys.argv[5] if len(sys.argv) > 5 else "plain"
    auth = sys.argv[8] if len(sys.argv) > 8 else "-"
    ctx = None
    if mode != "plain":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[6], sys.argv[7])
    kwargs = dict(enable_SMTPUTF8=utf8, decode_data=False)
    if auth != "-":
        user, password = auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False)

        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=(mode == "starttls"),
        )
    if mode == "starttls":
        kwargs.update(tls_context=ctx, require_starttls=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Handler(out), **kwargs),
        host,
        port,
        ssl=ctx if mode == "tls" else None,
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
