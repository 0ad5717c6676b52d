"""A real SMTP server (aiosmtpd) for the delivery tests, run as its own process.

Why a separate process and plain asyncio instead of aiosmtpd's Controller
thread: the client under test uses blocking smtplib in the test process, and
Controller's readiness probe cannot speak implicit TLS.  Each message is
written to SPOOL/msg-N.eml with its envelope in SPOOL/msg-N.json.

    smtpd_main.py --port P --spool DIR --security starttls|ssl|none
                  --cert PEM --key PEM [--user NAME]   (password in
                  $AMDR_TEST_SMTP_PASSWORD, never on the command line)
                  [--refuse-file FILE]  (recipients it lists are refused)
"""

import argparse
import asyncio
import hmac
import json
import logging
import os
import ssl
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Spool:
    def __init__(self, spool: Path, refuse_file: Path | None = None):
        self.spool = spool
        self.n = 0
        self.refuse_file = refuse_file

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # addresses listed (one a line) in --refuse-file, read at every RCPT, are refused
        if self.refuse_file and self.refuse_file.exists() \
                and address in self.refuse_file.read_text().split():
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = self.spool / f"msg-{self.n}"
        tls = server.transport.get_extra_info("ssl_object") is not None
        user = session.auth_data.login.decode() if session.authenticated and \
            isinstance(session.auth_data, LoginPassword) else None
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "tls": tls, "auth_user": user}
        # write then rename, so the test never reads half a message
        tmp = base.with_suffix(".tmp")
        tmp.write_bytes(envelope.original_content)
        os.replace(tmp, base.with_suffix(".eml"))
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, base.with_suffix(".json"))
        return "250 OK stored"


def authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, user.encode())
              and hmac.compare_digest(auth_data.password, password.encode()))
        # handled=False: aiosmtpd's default (True) means "I already answered", so
        # a failed login would get no 535 reply and the client would hang
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--spool", type=Path, required=True)
    p.add_argument("--security", choices=("starttls", "ssl", "none"), required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user")
    p.add_argument("--refuse-file", type=Path)
    a = p.parse_args()
    # INFO shows every connection ("Peer: ..."): tests read it to prove none was made
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    handler = Spool(a.spool, a.refuse_file)
    auth = {}
    if a.user:
        auth = {"authenticator": authenticator(a.user, os.environ["AMDR_TEST_SMTP_PASSWORD"]),
                "auth_required": True,
                # aiosmtpd only counts STARTTLS as TLS; under implicit TLS (ssl) it
                # would refuse AUTH, so the check is off there (the wire is encrypted)
                "auth_require_tls": a.security == "starttls"}

    def factory():
        return SMTP(handler, hostname="amdr-test-smtpd",
                    tls_context=ctx if a.security == "starttls" else None,
                    require_starttls=a.security == "starttls", **auth)

    async def serve():
        server = await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", a.port, ssl=ctx if a.security == "ssl" else None)
        print(f"listening on 127.0.0.1:{a.port} ({a.security})", flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
