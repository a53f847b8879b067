"""gunicorn's settings beyond the command line (it reads this file from the working directory).

Each worker imports Django and the app, then freezes those objects out of the garbage
collector: a full collection no longer walks tens of thousands of long-lived objects in the
middle of a request. Measured on the till sidebar with one client: p99 22–60 ms without,
21–24 ms with (`make bench`'s HTTP figures run through this file too).
"""

import gc


def post_worker_init(worker):
    gc.collect()
    gc.freeze()


# The access log (when one is asked for, e.g. --access-logfile -) never prints the query of a
# lookup: it carries phone numbers and emails (cxcore/access_log.py).
logger_class = "cxcore.access_log.AccessLogger"


# The longest request line gunicorn allows (its default is 4094): a query string of the API's
# longest documented values, percent-encoded (up to 12 bytes a character), fits, so such a
# request reaches the API and its 400 rather than gunicorn's HTML 414.
limit_request_line = 8190
