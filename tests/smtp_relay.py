"""A real SMTP server for the tests (aiosmtpd): every message it accepts is delivered over
LMTP into the test Dovecot, so a test reads what a customer received over IMAP. A
recipient Dovecot does not know is refused with Dovecot's own 5xx answer.

    python smtp_relay.py SMTP_PORT LMTP_PORT      (LMTP_PORT 0: accept and discard, for benchmarks)
"""
import asyncio
import signal
import smtplib
import sys

from aiosmtpd.controller import Controller


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
    port, lmtp_port = int(sys.argv[1]), int(sys.argv[2])
    controller = Controller(Relay(lmtp_port), hostname="127.0.0.1", port=port)
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
