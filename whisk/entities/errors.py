"""Domain errors raised by entities and services, and the HTTP status a REST caller gets for each (`http_status`):
`whisk/api/errors.py` answers with it, and the alarms feeds act on a fire's as OpenWhisk's provider acts on the
status of its REST fire.

    WhiskError                  whisk internal error (500)
    ├── Corrupted               a stored document whisk cannot read (500)
    ├── Invalid                 bad input (400)
    ├── Unauthenticated         missing or invalid credentials (401)
    ├── Forbidden               valid identity, no right (403)
    ├── NotFound                no such entity (404)
    ├── Conflict                exists already / concurrent update (409)
    ├── TooLarge                body or field over its size limit (413)
    ├── RequestTimeout          a request body that stopped arriving (408)
    ├── NotAcceptable           an answer in no type the request's Accept header allows (406)
    ├── UnsupportedMediaType    a body the route cannot read (415)
    ├── Unprocessable           e.g. a binding that points to itself (422)
    ├── Throttled               per-namespace limits (429)
    ├── BackendUnavailable      a store, bus or discovery backend does not answer (503)
    └── NoInvokers              no healthy invoker (503)
"""


# Pekko's rejection of a body that is not what the route reads (the parser's reason follows), and OpenWhisk's
# conformance message: an id that holds an entity of another kind than the collection addressed.
MALFORMED = "The request content was malformed:\n"
CONFORMANCE = "Resource by this name exists but is not in this collection."


class WhiskError(Exception):
    """Base of every error whisk raises on purpose; the message is shown to the user as is."""


class Corrupted(WhiskError):
    """A stored entity that cannot be read: OpenWhisk's `corruptedEntity` (500)."""

    def __init__(self, message: str = "Resource is corrupted and cannot be read.") -> None:
        super().__init__(message)


class Invalid(WhiskError):
    pass


class Unauthenticated(WhiskError):
    pass


class Forbidden(WhiskError):
    pass


class NotFound(WhiskError):
    def __init__(self, message: str = "The requested resource does not exist.") -> None:
        super().__init__(message)


class Conflict(WhiskError):
    pass


class TooLarge(WhiskError):
    pass


class RequestTimeout(WhiskError):
    pass


class Unprocessable(WhiskError):
    pass


class Throttled(WhiskError):
    pass


class BackendUnavailable(WhiskError):
    pass


class NoInvokers(BackendUnavailable):
    def __init__(self, message: str = "No invokers available.") -> None:
        super().__init__(message)


class NotAcceptable(WhiskError):
    """The answer's content type is not among those the request accepts (Pekko's content negotiation, 406)."""


class UnsupportedMediaType(WhiskError):
    """A request body in a content type the route does not read (415)."""


_HTTP_STATUS: dict[type[WhiskError], int] = {
    WhiskError: 500, Invalid: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, NotAcceptable: 406,
    RequestTimeout: 408, Conflict: 409, TooLarge: 413, UnsupportedMediaType: 415, Unprocessable: 422, Throttled: 429,
    BackendUnavailable: 503}


def http_status(error: WhiskError) -> int:
    """The status of the nearest class of `error` that has one (docs/openwhisk.md §1.1)."""
    return next(_HTTP_STATUS[c] for c in type(error).__mro__ if c in _HTTP_STATUS)
