"""A real SMTP server for the tests (aiosmtpd): every message it accepts is delivered over
LMTP into the test Dovecot, so a test reads what a customer received over IMAP. A
recipient Dovecot does not know is refused with Dovecot's own 5xx answer.

    python smtp_relay.py SMTP_PORT LMTP_PORT [--starttls CERT KEY | --tls CERT KEY] [--auth USER:PASS]
    (LMTP_PORT 0: accept and discard, for benchmarks)
"""
import argparse
import asyncio
import signal
import smtplib
import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Relay:
    def __init__(self, lmtp_port):
        self.lmtp_port = lmtp_port

    async def handle_DATA(self, server, session, envelope):
        if self.lmtp_port == 0:
            return "250 2.0.0 accepted"
        return await asyncio.get_running_loop().run_in_executor(None, self.deliver, envelope)

    def deliver(self, envelope):
        try:
            with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
                refused = lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        except smtplib.SMTPRecipientsRefused as e:
            code, message = next(iter(e.recipients.values()))
            return f"{code} {message.decode(errors='replace')}"
        except smtplib.SMTPResponseException as e:
            return f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"
        except OSError as e:
            return f"451 4.3.0 mailbox server unavailable: {e}"
        if refused:
            code, message = next(iter(refused.values()))
            return f"{code} {message.decode(errors='replace')}"
        return "250 2.0.0 delivered"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("lmtp_port", type=int)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", metavar="USER:PASS")
    args = parser.parse_args()
    options = {}
    if args.starttls or args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*(args.starttls or args.tls))
        if args.starttls:
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)

        # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is encrypted anyway.
        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(args.starttls))
    controller = Controller(Relay(args.lmtp_port), hostname="127.0.0.1", port=args.port, **options)
    controller.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
