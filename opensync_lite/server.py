"""Running the server: waitress in one process or several sharing one socket, stopped by
SIGTERM/Ctrl-C after the requests in flight are done."""

import logging
import os
import signal
import sys
import time


def prefork(listener, workers, make_server):
    """Run ``workers`` processes that accept on the one listening socket (the kernel hands each
    connection to one of them), each with its own app and database connections, opened after
    the fork. SQLite's WAL and BEGIN IMMEDIATE serialise their writes. SIGTERM or Ctrl-C
    reaches every worker, which drains its requests in flight; the parent waits for all."""
    children = set()
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker
            code = 0
            try:
                server = make_server()
                serve_until_stopped(server, stop_on_signals(server))
            except BaseException:  # noqa: BLE001 - a worker reports and exits; the parent carries on
                logging.getLogger("opensync_lite").exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children.add(pid)
    listener.close()

    def forward(signum, frame):
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    failed = 0
    while children:
        pid, status = os.wait()
        children.discard(pid)
        failed += os.waitstatus_to_exitcode(status) != 0
    if failed:
        raise SystemExit(1)


def stop_on_signals(server):
    """SIGTERM and SIGINT ask the server to stop; returns the list they append to."""
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        server.pull_trigger()  # wake the loop now rather than at its next timeout

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return stopping


def serve_until_stopped(server, stopping, grace_seconds=30):
    """Run waitress until ``stopping`` fills; then stop listening and finish what is in flight
    (requests being read, handled or sent) before exiting, so no acknowledged write is cut
    off. Drives waitress's own event loop one turn at a time to keep serving while draining."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    def turn(timeout):
        server.asyncore.loop(timeout=timeout, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)

    def in_flight():
        return any(
            isinstance(ch, HTTPChannel) and (ch.requests or ch.request is not None or ch.total_outbufs_len)
            for ch in list(server._map.values())
        )

    while not stopping:
        turn(server.adj.asyncore_loop_timeout)
    print("opensync-lite: stopping, finishing requests in flight", file=sys.stderr, flush=True)
    wasyncore.dispatcher.close(server)  # no new connections; the trigger stays to wake the loop
    deadline = time.monotonic() + grace_seconds
    while in_flight() and time.monotonic() < deadline:
        turn(0.05)
    server.task_dispatcher.shutdown(timeout=5)
    print("opensync-lite: stopped", file=sys.stderr, flush=True)
