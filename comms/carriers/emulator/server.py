"""Serving the emulator: a threaded keep-alive HTTP server, blocking or in a background thread."""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer, ThreadingMixIn
from typing import Any
from urllib.parse import unquote_to_bytes

from .app import EmulatorApp
from .config import EmulatorConfig
from .control import listed

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 75.0  # seconds an idle keep-alive connection is held; longer than clients' pool idle


def _as_config(config: EmulatorConfig | Mapping[str, Any] | None) -> EmulatorConfig:
    return config if isinstance(config, EmulatorConfig) else EmulatorConfig.from_mapping(config)


def create_emulator_app(config: EmulatorConfig | Mapping[str, Any] | None = None) -> EmulatorApp:
    """The emulator as a WSGI application (call ``.close()`` on it to stop its callback threads)."""
    return EmulatorApp(_as_config(config))


class _Handler(BaseHTTPRequestHandler):
    """A minimal WSGI gateway keeping HTTP/1.1 connections open between requests.

    Werkzeug's development server closes every connection (and its body-draining step would
    swallow the next request if it did not), so each create would cost a TCP handshake and a
    thread start. Reusing connections is what lets one process take hundreds of creates a second
    next to the client being measured. Request bodies must carry a Content-Length, as the SDK's do.
    """

    protocol_version = "HTTP/1.1"
    server_version = "TwilioEmulator/1.0"
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers and body leave in one write; handle_one_request flushes

    def do_GET(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write("411 Length Required", [("Content-Type", "text/plain")], b"Content-Length required")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for key, value in self.headers.items():
            name = "HTTP_" + key.upper().replace("-", "_")
            if name not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[name] = value
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        result = self.server.app(environ, start_response)  # type: ignore[attr-defined]
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        self._write(started[0], started[1], b"".join(chunks))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _write(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.track(self.connection, add=False)  # type: ignore[attr-defined]
        try:
            super().finish()  # flushes what is still buffered
        except OSError:
            pass  # the client hung up (a timed-out request); there is no one left to answer

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per request would cost more than the request itself at benchmark rates


class EmulatorServer(ThreadingMixIn, HTTPServer):
    """A thread per connection; remembers open connections so ``stop()`` can end them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, host: str, port: int, app: EmulatorApp):
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)
        self.port = self.server_address[1]

    def handle_error(self, request, client_address) -> None:
        log.exception("emulator connection from %s failed", client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can stall for seconds.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, connection: socket.socket, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(
    host: str = "127.0.0.1", port: int = 8099, config: EmulatorConfig | Mapping[str, Any] | None = None
) -> None:
    """Serve the emulator until interrupted (what ``comms emulator --port P`` runs)."""
    app = create_emulator_app(config)
    server = EmulatorServer(host, port, app)
    log.info("Twilio emulator on http://%s:%d (account %s)", host, server.port, app.config.account_sid)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.close_connections()
        app.close()


class EmulatorThread:
    """A running emulator in a background thread, for tests and benchmarks.

    Attributes:
        base_url: ``http://host:port`` — the adapter's ``api_base_url``.
        app: the :class:`EmulatorApp`, whose state tests may read directly.
    """

    def __init__(
        self, config: EmulatorConfig | Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
    ):
        self.app = create_emulator_app(config)
        self.server = EmulatorServer(host, port, self.app)
        self.base_url = f"http://{host}:{self.server.port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="twilio-emulator", daemon=True
        )
        self._thread.start()

    @property
    def config(self) -> EmulatorConfig:
        return self.app.config

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change settings at run time, as ``POST /_emulator/config`` does."""
        return self.app.configure(changes)

    def reset(self) -> None:
        self.app.reset()

    def messages(self, to: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Received messages, newest first (the records behind ``GET /_emulator/messages``)."""
        return [listed(record) for record in self.app.messages.newest(to, limit)]

    def calls(self, to: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Received calls, newest first, each with the ``twiml`` it ran."""
        return [listed(record) for record in self.app.calls.newest(to, limit)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self.app.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_thread(
    config: EmulatorConfig | Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
) -> EmulatorThread:
    """Start an emulator on ``host:port`` (0: any free port) in a daemon thread."""
    return EmulatorThread(config, host, port)
