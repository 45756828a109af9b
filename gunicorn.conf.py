"""gunicorn's settings, one place for `./dev run` and the Docker image (`gunicorn --config
gunicorn.conf.py ...`); the command line adds only where to bind and how many workers.

Request head limits: the app refuses a URL over 4 KiB (414), more than 16 KiB or 64 fields of
headers (431) in its JSON error envelope (marketplace/http_guards.py). gunicorn's own limits sit
above those, so what the app refuses reaches it; gunicorn answers what is past its own limits
(a request line over 8190 bytes, a header line over 32 KiB, more than 100 fields) with an
HTML page, so the proxy in front must refuse those first (see
docs/accounts-and-security.md#errors-and-request-limits)."""

import re

from gunicorn.glogging import Logger

limit_request_line = 8190  # gunicorn's ceiling: any larger value is taken as 8190
limit_request_fields = 100
limit_request_field_size = 32 * 1024

# Logs hold ids, codes and counts, not client addresses: no %(h)s, and the path without its
# query string (%(U)s, not %(r)s). The request id is the one the app echoes in X-Request-ID.
accesslog = "-"
errorlog = "-"
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'

_CLIENT_ADDRESS = re.compile(r" from ip=\S*?: ")


class PrivateLogger(Logger):
    """gunicorn's logger, without the client address it puts in "Invalid request from ip=..."
    warnings (a malformed or over-long request refused before the app sees it)."""

    def warning(self, msg: str, *args: object, **kwargs: object) -> None:
        super().warning(_CLIENT_ADDRESS.sub(": ", str(msg)), *args, **kwargs)


logger_class = PrivateLogger
