"""A TCP server that accepts connections and never says a word: a hung sshd or MTA."""

import contextlib
import socket
import threading


@contextlib.contextmanager
def silent_server(address: str = "127.0.0.1", port: int = 0):
    """Listen on address:port (0: any free port); yield the port; close everything afterwards."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(16)
    server.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
