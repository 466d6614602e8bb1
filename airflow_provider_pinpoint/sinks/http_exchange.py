"""One HTTP/1.1 POST over a botocore HTTP session's own urllib3 connection pool, without urllib3's and
``http.client``'s generic request and response machinery.

Why: for a request whose headers and body are already built (see :mod:`.direct_send`), what
``URLLib3Session.send`` still costs is generic work done anew for every request: copying the
headers into botocore's and urllib3's case-insensitive dicts, looking the pool up by URL, writing
each header through ``http.client``, and parsing the answer's headers with the ``email`` package.
:class:`PoolExchange` looks the pool up once, takes a connection from it (the pool drops a kept-alive
connection the server closed), lets urllib3 connect it (TLS, a proxy's ``CONNECT`` tunnel, socket
options and the connect timeout are the pool's, as the session configured it), writes the request
with one ``sendall`` and reads the answer with a small parser (status line, headers, a body by
``Content-Length``, chunked, or up to the end of the connection). The connection goes back to the
pool only after a complete answer the server did not close; otherwise it is closed.

What goes out is what ``URLLib3Session.send`` sends for the same headers and body: the request
line, the ``Host`` and ``Accept-Encoding: identity`` headers ``http.client`` adds, then the headers
in order. Transport failures raise what ``URLLib3Session.send`` raises for them (botocore's
``EndpointConnectionError``, ``ConnectTimeoutError``, ``ReadTimeoutError``, ``ConnectionClosedError``,
``ProxyConnectionError``, ``SSLError``), made from the urllib3 exception ``urlopen`` would have raised.

:func:`pool_exchange` returns None, with the reason logged at DEBUG, where this cannot be
reproduced exactly, and the caller keeps using the session's ``send``: a session of another type,
an HTTP proxy for a plain-http URL (absolute-form request line) or a forwarding HTTPS proxy, botocore's
experimental proxy ``Host`` header, a per-request total timeout, or urllib3/botocore internals laid
out otherwise.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 65536
_RECV = 65536
_BLOCKING_ERRNOS = {errno.EAGAIN, errno.EWOULDBLOCK}
_BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of an answer's head
# What http.client and urllib3 take with int(): digits (a length may carry a "+"), a chunk size "0x".
_STATUS = re.compile(r"[0-9]+")
_LENGTH = re.compile(r"\+?[0-9]+")
_CHUNK_SIZE = re.compile(rb"(0[xX])?[0-9A-Fa-f]+")


class Headers(dict[str, str]):
    """An answer's headers, looked up case-insensitively: keys lower-case, a repeated header's values joined
    by ", " (as urllib3 joins them); :attr:`pairs` keeps them as received."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        for name, value in pairs:
            key = name.lower()
            before = dict.get(self, key)
            dict.__setitem__(self, key, value if before is None else f"{before}, {value}")
        self.pairs = pairs

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def as_urllib3(self) -> Any:
        """The headers as urllib3 hands them to botocore (an ``HTTPHeaderDict``)."""
        from urllib3 import HTTPHeaderDict

        headers = HTTPHeaderDict()
        for name, value in self.pairs:
            headers.add(name, value)
        return headers


class _Unsupported(Exception):
    """The session is set up in a way the exchange does not reproduce."""


class _Broken(Exception):
    """The answer is malformed or the server closed the connection before it was complete."""


def pool_exchange(session: Any, url: str, context: dict[str, Any]) -> PoolExchange | None:
    """An exchange for POSTs to ``url`` over ``session``'s pool, or None (reason at DEBUG) to keep ``session.send``."""
    try:
        reason = _refusal(session, url, context)
        if reason is None:
            return PoolExchange(session, url, context)
    except _Unsupported as exc:
        reason = str(exc)
    except Exception as exc:  # urllib3/botocore laid out otherwise: keep the session's own send
        reason = f"urllib3/botocore internals differ ({type(exc).__name__})"
    log.debug("requests go through the HTTP session's send: %s", reason)
    return None


def _refusal(session: Any, url: str, context: dict[str, Any]) -> str | None:
    import botocore.httpsession
    import urllib3.connectionpool
    import urllib3.util.url

    if type(session) is not botocore.httpsession.URLLib3Session:
        return f"the HTTP session is not botocore's ({type(session).__name__})"
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        return "the URL is neither http nor https"
    proxy_url = session._proxy_config.proxy_url_for(url)
    if proxy_url:
        if scheme == "http":
            return "a proxy for a plain-http URL (absolute-form request line)"
        if urlsplit(proxy_url).scheme == "https" and session._proxies_kwargs().get("use_forwarding_for_https"):
            return "a forwarding HTTPS proxy (absolute-form request line)"
    if os.environ.get("BOTO_EXPERIMENTAL__ADD_PROXY_HOST_HEADER", ""):
        return "botocore's experimental proxy Host header is on"
    for name in ("_get_conn", "_put_conn", "_validate_conn", "_prepare_proxy", "_raise_timeout"):
        getattr(urllib3.connectionpool.HTTPConnectionPool, name)
    for name in ("_wrap_proxy_error", "connection_requires_http_tunnel"):
        getattr(urllib3.connectionpool, name)
    urllib3.util.url._encode_target  # noqa: B018 - only checked to be there
    botocore.httpsession.mask_proxy_url  # noqa: B018 - only checked to be there
    for name in ("_get_connection_manager", "_setup_ssl_cert", "_get_request_timeout", "_verify", "_timeout"):
        getattr(session, name)
    return None


class PoolExchange:
    """POSTs to one URL over the connection pool ``session`` uses for it; thread-safe (the pool is)."""

    def __init__(self, session: Any, url: str, context: dict[str, Any]) -> None:
        import urllib3.connectionpool
        import urllib3.util.url
        from urllib3.util.timeout import Timeout

        self.session = session
        self._url = url
        self._proxy_url = session._proxy_config.proxy_url_for(url)
        parts = urlsplit(url)
        self._scheme = parts.scheme
        # The request target urllib3 writes for the path botocore passes it (no query: see direct_send).
        self._target = urllib3.util.url._encode_target(parts.path or "/")
        request_timeout = session._get_request_timeout(_Request(context))
        self._tunnel = False
        self._host_header: bytes | None = None
        self._pool: Any = self._new_pool()
        timeout = self._pool._get_timeout(
            request_timeout if request_timeout is not None else urllib3.connectionpool._DEFAULT_TIMEOUT
        )
        if timeout.total is not None:
            raise _Unsupported("a total timeout")
        self._connect_timeout = Timeout.resolve_default_timeout(timeout.connect_timeout)
        self._read_timeout = Timeout.resolve_default_timeout(timeout.read_timeout)
        if self._read_timeout == 0:
            raise _Unsupported("a read timeout of 0")

    def _new_pool(self) -> Any:
        import urllib3.connectionpool

        session = self.session
        pool = session._get_connection_manager(self._url, self._proxy_url).connection_from_url(self._url)
        session._setup_ssl_cert(pool, self._url, session._verify)
        self._tunnel = pool.proxy is not None and urllib3.connectionpool.connection_requires_http_tunnel(
            pool.proxy, pool.proxy_config, self._scheme
        )
        return pool

    def post(self, headers: Iterable[tuple[str, bytes]], body: bytes) -> tuple[int, Headers, bytes]:
        """Send one POST; (status, headers as received, body), or botocore's exception for a transport failure."""
        from urllib3.exceptions import ClosedPoolError

        try:
            try:
                return self._post(self._pool, headers, body)
            except ClosedPoolError:  # the session's pool manager dropped this pool: take the one it has now
                self._pool = self._new_pool()
                return self._post(self._pool, headers, body)
        except Exception as exc:
            raise self._botocore_error(exc) from None

    def _post(self, pool: Any, headers: Iterable[tuple[str, bytes]], body: bytes) -> tuple[int, Headers, bytes]:
        conn = pool._get_conn()
        keep = False
        try:
            conn.timeout = self._connect_timeout
            self._connect(pool, conn)
            host = self._host_header
            if host is None:
                host = self._host_header = _host_header(conn)
            lines = [
                b"POST " + self._target.encode("ascii") + b" HTTP/1.1",
                b"Host: " + host,
                b"Accept-Encoding: identity",
            ]
            lines += [name.encode("ascii") + b": " + value for name, value in headers]
            lines += (b"", b"")
            head = b"\r\n".join(lines)
            if head.count(b"\n") != len(lines) - 1 or head.count(b"\r") != len(lines) - 1:
                # http.client refuses line breaks inside a header (botocore then raises HTTPClientError);
                # the header is not named, its value may be a credential.
                raise ValueError("Invalid header value: a line break inside a header")
            sock = conn.sock
            sock.settimeout(self._connect_timeout)  # urllib3 sends under the connect timeout, reads under the read one
            try:
                sock.sendall(head + body)
            except BrokenPipeError:
                pass  # as urllib3: the server may have answered and closed; read what it said
            except OSError as exc:
                if exc.errno not in (errno.EPROTOTYPE, errno.ECONNRESET):
                    raise _aborted(exc) from exc
            sock.settimeout(self._read_timeout)
            status, answer_headers, answer_body, keep = _read_answer(sock, pool, self._url, self._read_timeout)
            return status, answer_headers, answer_body
        finally:
            if keep:
                pool._put_conn(conn)
            else:
                conn.close()
                pool._put_conn(None)

    def _connect(self, pool: Any, conn: Any) -> None:
        """Connect ``conn`` if it is not, as ``urlopen`` does: the urllib3 exception it raises on failure."""
        if not conn.is_closed:
            return
        from urllib3.connectionpool import _wrap_proxy_error
        from urllib3.exceptions import NewConnectionError, SSLError
        from urllib3.exceptions import TimeoutError as URLLib3TimeoutError

        try:
            from ssl import CertificateError
            from ssl import SSLError as BaseSSLError
        except ImportError:  # pragma: no cover - no ssl module: no https either
            BaseSSLError = CertificateError = OSError  # type: ignore[misc,assignment]  # noqa: N806
        try:
            if self._tunnel:
                try:
                    pool._prepare_proxy(conn)
                except (BaseSSLError, OSError, TimeoutError) as exc:
                    pool._raise_timeout(err=exc, url=pool.proxy.url, timeout_value=conn.timeout)
                    raise
            try:
                pool._validate_conn(conn)
            except (TimeoutError, BaseSSLError) as exc:
                pool._raise_timeout(err=exc, url=self._target, timeout_value=conn.timeout)
                raise
            if conn.is_closed:
                conn.connect()
        except (OSError, NewConnectionError, URLLib3TimeoutError, BaseSSLError, CertificateError, SSLError) as exc:
            # urlopen's handling: TLS errors become urllib3's SSLError, failures to reach a proxy a ProxyError,
            # other socket errors a ProtocolError; urllib3's own (NewConnectionError...) stay as they are.
            new: Exception = exc
            if isinstance(exc, (BaseSSLError, CertificateError)):
                new = SSLError(exc)
            if isinstance(new, (OSError, NewConnectionError, URLLib3TimeoutError, SSLError)) and (
                conn.proxy and not conn.has_connected_to_proxy
            ):
                new = _wrap_proxy_error(new, conn.proxy.scheme)
            elif isinstance(new, OSError):
                new = _aborted(new)
            if new is exc:
                raise
            raise new from exc

    def _botocore_error(self, exc: Exception) -> Exception:
        """What ``URLLib3Session.send`` raises for the urllib3 exception ``exc``, in its order."""
        from botocore.exceptions import (
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            HTTPClientError,
            ProxyConnectionError,
            ReadTimeoutError,
            SSLError,
        )
        from botocore.httpsession import mask_proxy_url
        from urllib3.exceptions import (
            ConnectTimeoutError as URLLib3ConnectTimeoutError,
        )
        from urllib3.exceptions import (
            NewConnectionError,
            ProtocolError,
            ProxyError,
        )
        from urllib3.exceptions import (
            ReadTimeoutError as URLLib3ReadTimeoutError,
        )
        from urllib3.exceptions import (
            SSLError as URLLib3SSLError,
        )

        url = self._url
        if isinstance(exc, URLLib3SSLError):
            return SSLError(endpoint_url=url, error=exc)
        if isinstance(exc, (NewConnectionError, socket.gaierror)):
            return EndpointConnectionError(endpoint_url=url, error=exc)
        if isinstance(exc, ProxyError):
            return ProxyConnectionError(proxy_url=mask_proxy_url(self._proxy_url), error=exc)
        if isinstance(exc, URLLib3ConnectTimeoutError):
            return ConnectTimeoutError(endpoint_url=url, error=exc)
        if isinstance(exc, URLLib3ReadTimeoutError):
            return ReadTimeoutError(endpoint_url=url, error=exc)
        if isinstance(exc, ProtocolError):
            return ConnectionClosedError(error=exc, request=None, endpoint_url=url)
        if isinstance(exc, _BOTOCORE_PASSTHROUGH):
            return exc
        log.debug("Exception received when sending urllib3 HTTP request", exc_info=True)
        return HTTPClientError(error=exc)


try:
    from concurrent.futures import CancelledError as _CancelledError

    _BOTOCORE_PASSTHROUGH: tuple[type[BaseException], ...] = (_CancelledError,)
except ImportError:  # pragma: no cover
    _BOTOCORE_PASSTHROUGH = ()


class _Request:
    """What ``URLLib3Session._get_request_timeout`` reads of a request: its context."""

    __slots__ = ("context",)

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context


def _aborted(exc: BaseException) -> Exception:
    from urllib3.exceptions import ProtocolError

    return ProtocolError("Connection aborted.", exc)


def _host_header(conn: Any) -> bytes:
    """The ``Host`` header ``http.client`` writes for ``conn`` (the tunnelled host through a proxy)."""
    if conn._tunnel_host:
        host, port = conn._tunnel_host, conn._tunnel_port
    else:
        host, port = conn.host, conn.port
    try:
        encoded = host.encode("ascii")
    except UnicodeEncodeError:
        encoded = host.encode("idna")
    if ":" in host:
        encoded = b"[" + encoded + b"]"
        strip = getattr(__import__("http.client").client, "_strip_ipv6_iface", None)
        if strip is not None:
            encoded = strip(encoded)
    if port == conn.default_port:
        return encoded
    return encoded + b":" + str(port).encode("ascii")


def _read_answer(sock: Any, pool: Any, url: str, read_timeout: Any) -> tuple[int, Headers, bytes, bool]:
    """Read one answer from ``sock``: (status, headers, body, whether the connection may be kept)."""
    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    reader = _Reader(sock)
    try:
        while True:
            head = reader.head(_MAX_HEADER_BYTES)
            status, headers, close = _parse_head(head)
            if status >= 200 or status == 101:
                break  # 1xx interim answers are skipped, as http.client skips 100 Continue
        if status == 101:
            raise _Broken("the server switched protocols")
        answer = Headers(headers)  # repeated headers joined by ", ", as urllib3 joins them
        # None: a length that is not a number.
        lengths = {int(part) if _LENGTH.fullmatch(part) else None for part in _values(answer.get("content-length"))}
        chunked = "chunked" in answer.get("transfer-encoding", "").lower()
        if len(lengths) > 1 and not chunked:
            raise _Broken("Content-Length headers that disagree")  # urllib3 refuses them too
        if status in (204, 304):
            body = b""
        elif chunked:
            body = reader.chunked()
            close = close or reader.ended
        elif lengths and (length := next(iter(lengths))) is not None:
            body = reader.exactly(length)
        else:  # no length, or one that is not a number: read to the end, as http.client does
            body = reader.to_end()
            close = True
        keep = not close and not reader.pending
        return status, answer, body, keep
    except TimeoutError as exc:
        raise ReadTimeoutError(pool, url, f"Read timed out. (read timeout={read_timeout})") from exc
    except OSError as exc:
        if exc.errno in _BLOCKING_ERRNOS:
            raise ReadTimeoutError(pool, url, f"Read timed out. (read timeout={read_timeout})") from exc
        raise _aborted(exc) from exc
    except _Broken as exc:
        raise ProtocolError("Connection aborted.", exc) from exc


def _values(header: str | None) -> list[str]:
    """The comma-separated values of a header, stripped; none when it is absent."""
    return [] if header is None else [part.strip() for part in header.split(",")]


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]], bool]:
    """Status, headers (name, value as received) and whether the server closes the connection after it."""
    lines = [line.removesuffix("\r") for line in head.decode("iso-8859-1").split("\n")]
    parts = lines[0].split(None, 2)
    if (
        len(parts) < 2
        or not parts[0].startswith("HTTP/1.")
        or not _STATUS.fullmatch(parts[1])
        or not 100 <= int(parts[1]) <= 999
    ):
        raise _Broken("a malformed status line")
    version, status = parts[0], int(parts[1])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # an obsolete folded continuation line
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise _Broken("a malformed header line")
        headers.append((name.strip(), value.strip()))
    connection = ",".join(value for name, value in headers if name.lower() == "connection").lower()
    close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    return status, headers, close


class _Reader:
    """Buffered reads from a socket; a server closing before the answer is complete raises :class:`_Broken`."""

    __slots__ = ("_buffer", "_sock", "ended")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self.ended = False  # the server closed the connection where an answer may end

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def _fill(self) -> bool:
        data = self._sock.recv(_RECV)
        if not data:
            return False
        self._buffer += data
        return True

    def head(self, limit: int) -> bytes:
        """An answer's head, up to the empty line that ends it (lines may end in CRLF or, as http.client
        also reads them, in a bare LF)."""
        start = 0
        while True:
            match = _BLANK_LINE.search(self._buffer, start)
            if match is not None:
                found = bytes(self._buffer[: match.start()])
                del self._buffer[: match.end()]
                return found
            if len(self._buffer) > limit:
                raise _Broken("an answer head too long")
            start = max(0, len(self._buffer) - 3)
            if not self._fill():
                raise _Broken("the server closed the connection before answering completely")

    def line(self) -> bytes:
        """The next line, without its CRLF or LF."""
        return self.until(b"\n", _MAX_HEADER_BYTES).removesuffix(b"\r")

    def until(self, marker: bytes, limit: int) -> bytes:
        start = 0
        while True:
            at = self._buffer.find(marker, start)
            if at >= 0:
                found = bytes(self._buffer[:at])
                del self._buffer[: at + len(marker)]
                return found
            if len(self._buffer) > limit:
                raise _Broken("an answer head too long")
            start = max(0, len(self._buffer) - len(marker) + 1)
            if not self._fill():
                raise _Broken("the server closed the connection before answering completely")

    def exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            if not self._fill():
                raise _Broken("the server closed the connection before answering completely")
        data = bytes(self._buffer[:length])
        del self._buffer[:length]
        return data

    def to_end(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def chunked(self) -> bytes:
        parts = []
        while True:
            size_text = self.line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _Broken("a malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            parts.append(self.exactly(size))
            if self.line():
                raise _Broken("a malformed chunk")
        # Trailers, up to the empty line; a server may also close the connection instead of sending
        # that line, which http.client takes as the end of the answer.
        while True:
            if not self._buffer and not self._fill():
                self.ended = True
                break
            if not self.line():
                break
        return b"".join(parts)
