"""E-mail over SMTP (smtplib): STARTTLS or implicit TLS and authentication as configured,
a text and an HTML part, non-ASCII (Chinese) subjects and names encoded as RFC 2047 by the
`email` package's SMTP policy."""
import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from notify.failures import Permanent, Transient


def build_message(settings, key, to, rendered, unsubscribe_url=None):
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = rendered.get("subject") or ""
    msg["From"] = settings["sender"]
    msg["To"] = to
    msg["Date"] = formatdate(usegmt=True)
    # one Message-ID per notification key: a receiver can tell a resend from a new mail
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}@notify.dealflow>"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        # RFC 8058: a mail client may unsubscribe with one POST to that link
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.get("text") or "")
    if rendered.get("html"):
        msg.add_alternative(rendered["html"], subtype="html")
    return msg


def send_email(settings, msg):
    """Send `msg`; raises Transient or Permanent with the server's reply."""
    security = (settings.get("security") or "none").lower()
    timeout = float(settings.get("timeout_seconds") or 10)
    host, port = settings["host"], int(settings["port"])
    try:
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.get("username"):
                smtp.login(settings["username"], settings.get("password") or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise _by_code(code, reply) from None
    except smtplib.SMTPResponseException as exc:
        raise _by_code(exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:
        # disconnected, refused, timed out, TLS failed: the server may be back later
        raise Transient(f"SMTP {type(exc).__name__}: {exc}") from None


def _by_code(code, reply):
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    reason = f"SMTP {code} {reply}"
    return Permanent(reason) if 500 <= int(code) < 600 else Transient(reason)
