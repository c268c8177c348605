"""heartbeat.websockets against real websockets 17 peers on loopback: live pongs, a SIGSTOPped
server detected then reconnected, a SIGSTOPped client dropped from the server's live set, and
the JSON application heartbeat."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time

import pytest
import websockets

import heartbeat
from heartbeat import Config
from heartbeat.websockets import PeerUnresponsive, connect, keepalive, serve

# A verdict comes at most interval + timeout after the last pong; this much more is allowed
# for a busy 2-core machine (process wake-ups, the loop's own turns).
SLACK = 0.6


async def echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


def test_live_pongs_fill_rtt():
    async def main():
        async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
                config = Config(ping_interval=0.2, pong_timeout=0.5, liveness="pong")
                async with keepalive(ws, config) as hb:
                    for i in range(6):  # 3 s of pings, with application traffic alongside
                        await ws.send(f"m{i}")
                        assert await ws.recv() == f"m{i}"
                        await asyncio.sleep(0.5)
                    assert hb.stats.pongs_matched >= 10, hb.stats
                    assert hb.stats.pong_timeouts == 0
                    rtt = hb.rtt
                    assert rtt.samples >= 10
                    assert 0 < rtt.min <= rtt.smoothed < 0.2 and rtt.last is not None
                    assert hb.health is heartbeat.Health.HEALTHY
                    assert hb.state.name == "open"

    asyncio.run(main())


def test_sigstopped_server_is_declared_dead_then_connect_reconnects(spawn):
    server = spawn("server")
    interval, timeout = 0.5, 0.5
    config = Config(ping_interval=interval, pong_timeout=timeout, connect_timeout=1.0,
                    backoff_base=0.2, backoff_cap=0.5, liveness="pong", dead_close_code=4000)

    async def main():
        events = []
        n = 0
        async with connect(f"ws://127.0.0.1:{server.port}", config, on_event=events.append) as connections:
            async for ws in connections:
                n += 1
                await ws.send("hello")
                assert await ws.recv() == "hello"
                if n == 2:
                    break  # the reconnected connection is live
                deadline = time.monotonic() + 10
                while ws.heartbeat.stats.pongs_matched < 2:
                    assert time.monotonic() < deadline, ws.heartbeat.stats
                    await asyncio.sleep(0.05)
                server.stop()
                stopped = time.monotonic()
                with pytest.raises(PeerUnresponsive) as info:
                    await ws.recv()
                detected = time.monotonic() - stopped
                assert isinstance(info.value, websockets.ConnectionClosedError)
                assert info.value.verdict.kind == "pong_timeout"
                assert info.value.sent is not None and info.value.sent.code == 4000  # the configured code
                assert detected <= interval + timeout + SLACK, detected
                print(f"SIGSTOPped server declared dead {detected:.3f} s after the stop "
                      f"(bound {interval + timeout} s + {SLACK} s slack)")
                await asyncio.sleep(1.5)  # attempts time out while it is stopped
                server.cont()
                resumed = time.monotonic()
            reconnected = time.monotonic() - resumed
        assert [e["event"] for e in events].count("connected") == 2
        assert n == 2
        stats = connections.heartbeat.stats
        assert stats.connect_timeouts >= 1, "attempts while stopped end at connect_timeout"
        assert stats.connects == 2 and stats.pong_timeouts == 1
        # The next attempt after SIGCONT: one backoff ceiling (0.5 s) plus one connect timeout at most.
        assert reconnected <= 0.5 + 1.0 + SLACK, reconnected
        print(f"reconnected {reconnected:.3f} s after SIGCONT")

    asyncio.run(main())


def test_server_drops_a_sigstopped_client_from_its_live_set(spawn):
    interval, timeout = 0.5, 0.5

    async def main():
        ended = {}

        async def handler(ws):
            try:
                async for _ in ws:
                    pass
            except websockets.ConnectionClosed as exc:
                ended[ws] = (time.monotonic(), exc)

        # close_timeout stays at its 10 s default: the handler must still hear of the verdict at once.
        async with serve(handler, "127.0.0.1", 0, Config(ping_interval=interval, pong_timeout=timeout)) as server:
            port = list(server.sockets)[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}"
            client = spawn("client", uri)
            async with websockets.connect(uri, ping_interval=None) as healthy:
                deadline = time.monotonic() + 10
                while len(server.clients) < 2:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)
                assert server.broadcast("news") == 2
                assert await healthy.recv() == "news"
                await asyncio.sleep(1.2)  # a few pongs each
                client.stop()
                stopped = time.monotonic()
                while len(server.clients) == 2:
                    assert time.monotonic() - stopped < 5, "the stopped client was never dropped"
                    await asyncio.sleep(0.01)
                removed = time.monotonic() - stopped
                assert removed <= interval + timeout + SLACK, removed
                while not ended:
                    assert time.monotonic() - stopped < 5
                    await asyncio.sleep(0.01)
                [(at, exc)] = ended.values()
                assert isinstance(exc, PeerUnresponsive) and exc.verdict.kind == "pong_timeout"
                assert at - stopped <= interval + timeout + SLACK, at - stopped
                [left] = server.clients
                assert left.remote_address[1] == healthy.local_address[1]
                assert server.broadcast("more") == 1
                assert await healthy.recv() == "more"
                print(f"SIGSTOPped client left the live set {removed:.3f} s after the stop")

    asyncio.run(main())


def test_json_application_heartbeat():
    json_pings = []

    async def guide_server(ws):
        # The classic guide's server: answer {"type": "ping"} with {"type": "pong"}, echo the rest.
        # It counts the JSON pings: protocol pings (which websockets answers by itself) would
        # keep the heartbeat alive too, so matched pongs alone do not show the JSON heartbeat ran.
        async for message in ws:
            doc = json.loads(message)
            if doc.get("type") == "ping":
                json_pings.append(doc["timestamp"])
                await ws.send(json.dumps({"type": "pong", "timestamp": doc["timestamp"]}))
            else:
                await ws.send(message)

    async def main():
        async with websockets.serve(guide_server, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
                config = Config(ping_interval=0.1, pong_timeout=0.5, liveness="pong")
                async with keepalive(ws, config, json_heartbeat=True) as hb:
                    received = []
                    for i in range(8):
                        await ws.send(json.dumps({"n": i}))
                        received.append(json.loads(await hb.recv()))  # heartbeat messages are hidden
                        await asyncio.sleep(0.1)
                    assert received == [{"n": i} for i in range(8)]
                    assert len(json_pings) >= 5, json_pings
                    assert hb.stats.pongs_matched >= 5 and hb.rtt.samples >= 5
                    assert hb.stats.pongs_matched <= len(json_pings)
                    assert hb.stats.pong_timeouts == 0

    asyncio.run(main())


def test_json_heartbeat_answers_the_peers_json_ping_and_passes_lookalikes_on():
    got = asyncio.Queue()

    async def pinging_server(ws):
        # Our JSON ping first (left unanswered): the lookalikes then meet a pending ping.
        assert json.loads(await ws.recv())["type"] == "ping"
        await ws.send(json.dumps({"type": "ping", "timestamp": 12.5}))
        # Not the guide's heartbeat (a timestamp that is no number): application data.
        await ws.send(json.dumps({"type": "pong", "timestamp": [1]}))
        await ws.send(json.dumps({"type": "ping", "timestamp": True}))
        await ws.send(json.dumps({"type": "pong", "timestamp": {"t": 1}}))
        async for message in ws:
            doc = json.loads(message)
            if doc["type"] == "pong":
                await got.put(doc)

    async def main():
        async with websockets.serve(pinging_server, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
                async with keepalive(ws, Config(ping_interval=0.2, pong_timeout=10), json_heartbeat=True) as hb:
                    passed_on = [json.loads(await asyncio.wait_for(hb.recv(), 5)) for _ in range(3)]
                    assert passed_on == [{"type": "pong", "timestamp": [1]}, {"type": "ping", "timestamp": True},
                                         {"type": "pong", "timestamp": {"t": 1}}]
                    assert await asyncio.wait_for(got.get(), 5) == {"type": "pong", "timestamp": 12.5}

    asyncio.run(main())


def test_json_heartbeat_declares_dead_a_peer_that_answers_only_protocol_pings():
    interval, timeout = 0.3, 0.5

    async def deaf_server(ws):
        async for _ in ws:  # reads everything, answers no JSON ping (websockets answers protocol pings)
            pass

    async def main():
        async with websockets.serve(deaf_server, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
                config = Config(ping_interval=interval, pong_timeout=timeout, liveness="pong")
                async with keepalive(ws, config, json_heartbeat=True) as hb:
                    started = time.monotonic()
                    with pytest.raises(PeerUnresponsive) as info:
                        await asyncio.wait_for(hb.recv(), 10)
                    waited = time.monotonic() - started
                    assert info.value.verdict.kind == "pong_timeout"
                    assert hb.stats.pongs_matched == 0 and hb.stats.pings_sent >= 1
                    assert waited <= interval + timeout + SLACK, waited

    asyncio.run(main())


def test_serve_with_the_json_heartbeat_keeps_answering_clients_and_drops_the_silent():
    interval, timeout = 0.3, 0.5

    async def guide_client(uri, answer: bool, pings: list):
        # The classic guide's client: answer the server's JSON pings (or, when silent, not).
        async with websockets.connect(uri, ping_interval=None) as ws:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for message in ws:
                    doc = json.loads(message)
                    if doc.get("type") == "ping":
                        pings.append(doc["timestamp"])
                        if answer:
                            await ws.send(json.dumps({"type": "pong", "timestamp": doc["timestamp"]}))

    async def main():
        async def handler(ws):
            async for _ in ws.heartbeat:  # reads through the heartbeat: JSON pongs are taken in
                pass

        config = Config(ping_interval=interval, pong_timeout=timeout)
        async with serve(handler, "127.0.0.1", 0, config, json_heartbeat=True) as server:
            port = list(server.sockets)[0].getsockname()[1]
            uri = f"ws://127.0.0.1:{port}"
            answered, ignored = [], []
            tasks = [asyncio.ensure_future(guide_client(uri, True, answered)),
                     asyncio.ensure_future(guide_client(uri, False, ignored))]
            deadline = time.monotonic() + 5
            while len(server.clients) < 2:
                assert time.monotonic() < deadline, "clients never joined"
                await asyncio.sleep(0.01)
            joined = time.monotonic()
            while len(server.clients) == 2:
                assert time.monotonic() - joined < 5, "the silent client was never dropped"
                await asyncio.sleep(0.01)
            dropped = time.monotonic() - joined
            assert dropped <= interval + timeout + SLACK, dropped
            await asyncio.sleep(1.0)  # the answering client stays through a few more pings
            [ws] = server.clients
            assert ws.heartbeat.stats.pongs_matched >= 3 and ws.heartbeat.stats.pong_timeouts == 0
            assert len(answered) >= 3 and len(ignored) >= 1
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def test_peer_unresponsive_is_a_connection_closed_error():
    assert issubclass(heartbeat.PeerUnresponsive, websockets.ConnectionClosedError)
    assert websockets.version.version.startswith("17."), "close_exc is pinned against websockets 17"


def test_connect_honours_retry_after_from_a_503():
    from http import HTTPStatus

    attempts = []

    def busy_once(connection, request):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")
            response.headers["Retry-After"] = "1"
            return response
        return None

    async def main():
        async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None, process_request=busy_once) as server:
            port = server.sockets[0].getsockname()[1]
            # Without the server's request the next attempt would follow within 0.1 s.
            config = Config(ping_interval=1, pong_timeout=1, backoff_base=0.05, backoff_cap=0.1)
            async with connect(f"ws://127.0.0.1:{port}", config) as connections:
                async for ws in connections:
                    await ws.send("in")
                    assert await ws.recv() == "in"
                    break
        assert len(attempts) == 2
        waited = attempts[1] - attempts[0]
        assert 1.0 <= waited <= 1.0 + SLACK, waited

    asyncio.run(main())


def test_close_through_the_heartbeat_is_a_local_close_and_stops_it():
    async def main():
        async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) as ws:
                hb = keepalive(ws, Config(ping_interval=0.1, pong_timeout=0.5))
                await asyncio.sleep(0.35)
                await hb.close(1000)
                assert hb.state.name == "finished"
                assert hb.reason.kind == "local_close" and hb.reason.code == 1000 and not hb.reason.is_fault
                assert hb.health is heartbeat.Health.DEAD
                assert ws.close_code == 1000  # the peer echoed our code
                with pytest.raises(websockets.ConnectionClosedOK):
                    await ws.recv()

    asyncio.run(main())


def test_connect_gives_up_after_max_attempts_with_the_last_error():
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        events = []
        config = Config(backoff_base=0.05, backoff_cap=0.1, max_attempts=2)
        started = time.monotonic()
        with pytest.raises(OSError):
            async with connect(f"ws://127.0.0.1:{port}", config, on_event=events.append) as connections:
                async for _ in connections:
                    raise AssertionError("nothing listens there")
        assert time.monotonic() - started < 2.0
        assert [e["event"] for e in events].count("connecting") == 3  # the first, then 2 retries
        assert connections.heartbeat.state.name == "finished"
        assert connections.heartbeat.reason.kind == "connect_failed"

    asyncio.run(main())


def test_server_drops_a_client_that_stops_reading_while_it_broadcasts():
    # A client that completes the handshake and then never reads: the server's broadcasts fill
    # the socket, the write buffer grows, and a ping waits behind it. The heartbeat must keep
    # judging its deadlines while that ping is stuck (the core runs the pong timer from the
    # ping's emission until it is reported sent), or the dead reader is never dropped.
    interval, timeout = 0.5, 0.5
    bound = interval + 2 * timeout + SLACK

    async def main():
        async def handler(ws):
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in ws:
                    pass

        config = Config(ping_interval=interval, pong_timeout=timeout)
        async with serve(handler, "127.0.0.1", 0, config) as server:
            port = list(server.sockets)[0].getsockname()[1]
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
            # From here on the client reads nothing (its stream buffer fills, then reading pauses).
            deadline = time.monotonic() + 5
            while not server.clients:
                assert time.monotonic() < deadline, "the client never joined"
                await asyncio.sleep(0.01)
            [ws] = server.clients
            joined = time.monotonic()
            chunk = b"x" * 65536
            while server.clients and time.monotonic() - joined < bound + 2:
                server.broadcast(chunk)
                await asyncio.sleep(0.01)
            left = time.monotonic() - joined
            buffered = ws.transport.get_write_buffer_size() if ws.transport is not None else 0
            writer.transport.abort()
            assert not server.clients, f"still in the live set after {left:.1f} s ({buffered} bytes buffered)"
            assert left <= bound, left
            assert ws.heartbeat.reason.kind == "pong_timeout"
            print(f"a client that stopped reading left the live set {left:.3f} s after it joined "
                  f"(bound {interval} + 2 x {timeout} s + {SLACK} s slack)")

    asyncio.run(main())
