"""Running the server: waitress in one process or several sharing one socket, stopped by
SIGTERM/Ctrl-C after the requests in flight are done."""

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger("opensync_lite")


@dataclass(frozen=True)
class Limits:
    """What one connection may hold. Waitress reads requests in its event loop, not in a
    thread, so a slow client costs a connection, never a thread: these bound the connections."""
    threads: int = 8
    connection_limit: int = 1000  # open connections; waitress's own default (100) is easily filled
    channel_timeout: int = 60  # seconds a connection may stay silent
    read_timeout: int = 60  # seconds a request may take to arrive whole, however it trickles


class Channel(HTTPChannel):
    """Waitress's channel, noting when each request began to arrive: its channel_timeout only
    closes a connection that says nothing, so a client sending a byte every few seconds would
    keep its connection, and its place under the limit, for ever."""

    request_started = None

    def received(self, data):
        if self.request is None and data:
            self.request_started = time.monotonic()
        return super().received(data)


class Server(TcpWSGIServer):
    channel_class = Channel

    def maintenance(self, now):
        super().maintenance(now)  # the silent connections
        cutoff = time.monotonic() - self.read_timeout
        for channel in list(self.active_channels.values()):
            if channel.request is not None and (channel.request_started or cutoff) < cutoff:
                channel.will_close = True  # a request still arriving after read_timeout


def make_server(app, listener, limits):
    """A waitress server for ``app`` on the bound socket ``listener``."""
    adj = Adjustments(sockets=[listener], threads=limits.threads, ident="opensync-lite",
                      connection_limit=limits.connection_limit, channel_timeout=limits.channel_timeout,
                      cleanup_interval=1,  # the time-outs are looked at every second (a walk of the connections)
                      asyncore_use_poll=True)  # select() cannot watch descriptors past 1024
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(limits.threads)
    server = Server(app, {}, True, listener, dispatcher=dispatcher, adj=adj, bind_socket=False,
                    sockinfo=(listener.family, listener.type, listener.proto, listener.getsockname()))
    server.read_timeout = limits.read_timeout
    return server


def raise_open_files_limit(wanted):
    """Let the process hold ``wanted`` connections plus its files: the soft limit on open
    descriptors (often 1024) is raised toward the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + 64 if hard == resource.RLIM_INFINITY else min(wanted + 64, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


RESTART_PAUSE_S = (0.1, 5.0)  # a worker that keeps dying is restarted less and less often


def prefork(listener, workers, make_server):
    """Run ``workers`` processes (``make_server(index)`` makes each one's server) that accept on the one listening socket (the kernel hands each
    connection to one of them), each with its own app and database connections, opened after
    the fork. SQLite's WAL and BEGIN IMMEDIATE serialise their writes. A worker that dies (a
    crash, the OOM killer) is started again, and the log says how it ended. SIGTERM or Ctrl-C
    reaches every worker, which drains its requests in flight; the parent waits for all."""
    children = {}  # pid -> (its index, when it started)
    stopping = []

    def start(index):
        pid = os.fork()
        if pid == 0:  # a worker
            code = 0
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)  # the parent's handler is not the worker's
                server = make_server(index)
                serve_until_stopped(server, stop_on_signals(server))
            except BaseException:  # noqa: BLE001 - a worker reports and exits; the parent carries on
                log.exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def forward(signum, frame):
        stopping.append(signum)
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    for index in range(workers):
        start(index)
    pause = RESTART_PAUSE_S[0]
    failed = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index, started = children.pop(pid, (None, None))
        code = os.waitstatus_to_exitcode(status)
        if stopping or started is None:
            # A worker still starting when the stop came dies of the SIGTERM we forwarded,
            # before it served anything: that is a clean stop too.
            failed += code not in (0, -signal.SIGTERM)
            continue
        how = f"was killed by signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exited with {code}"
        log.error("worker %s %s; starting another", pid, how)
        # A worker that fails at start must not make the parent spin; one that served a while
        # is replaced at once.
        pause = RESTART_PAUSE_S[0] if time.monotonic() - started > 60 else min(pause * 2, RESTART_PAUSE_S[1])
        time.sleep(pause)
        if not stopping:
            start(index)
    listener.close()
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
