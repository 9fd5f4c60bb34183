"""The bulk frame reader: whole frames out of whatever the socket delivered, however cut."""

from __future__ import annotations

import socket
import struct

import pytest

from ingest.ws_frames import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    ConnectionClosed,
    FrameReader,
    ProtocolError,
)


def frame(payload: bytes, opcode: int = TEXT, *, final: bool = True, first: int | None = None,
          mask: bool = False) -> bytes:
    """A frame as a server writes it (RFC 6455 5.2)."""
    head = bytes([first if first is not None else (0x80 if final else 0) | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    return head + (b"\0\0\0\0" if mask else b"") + payload


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    client.settimeout(0.2)
    yield server, client
    server.close()
    client.close()


def read_all(reader: FrameReader, reads: int = 20) -> list[tuple[int, bytes]]:
    frames = []
    for _ in range(reads):
        frames += reader.read()
    return frames


def test_every_length_form_comes_out_whole_however_the_bytes_are_cut(pair):
    server, client = pair
    payloads = [b"", b"x" * 125, b"y" * 126, b"z" * 70_000, b'{"stream":"a"}', b"w" * 300_000]
    wire = b"".join(frame(p, TEXT if n % 2 else BINARY) for n, p in enumerate(payloads))
    reader = FrameReader(client)
    got = []
    for start in range(0, len(wire), 7919):  # cut mid-header and mid-payload alike
        server.sendall(wire[start:start + 7919])
        got += reader.read()
    got += read_all(reader, 3)
    assert [data for _op, data in got] == payloads
    assert [op for op, _ in got] == [TEXT if n % 2 else BINARY for n in range(len(payloads))]


def test_a_fragmented_message_is_joined_around_a_ping(pair):
    server, client = pair
    server.sendall(frame(b"one,", TEXT, final=False) + frame(b"ping!", PING)
                   + frame(b"two,", 0, final=False) + frame(b"three", 0)
                   + frame(b"\x03\xe8", CLOSE))
    assert read_all(FrameReader(client), 3) == [(PING, b"ping!"), (TEXT, b"one,two,three"),
                                                (CLOSE, b"\x03\xe8")]


def test_nothing_whole_in_time_is_an_empty_read_and_a_hang_up_ends_it(pair):
    server, client = pair
    reader = FrameReader(client)
    assert reader.read() == []
    server.sendall(frame(b"half a frame")[:5])
    assert reader.read() == []
    server.sendall(frame(b"half a frame")[5:])
    assert reader.read() == [(TEXT, b"half a frame")]
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosed):
        reader.read()


@pytest.mark.parametrize(("wire", "problem"), [
    (frame(b"x", mask=True), "masked"),
    (frame(b"x", first=0xC1), "reserved bit"),
    (frame(b"x", first=0x83), "unexpected opcode"),
    (frame(b"x", 0, final=True), "unexpected opcode"),  # a continuation of nothing
    (frame(b"x" * 126, PING), "control frame"),
    (frame(b"x", PING, final=False), "control frame"),
    (frame(b"a", TEXT, final=False) + frame(b"b"), "inside a fragmented"),
    (frame(b"x" * 2000), "over 1000"),
    (frame(b"x" * 600, TEXT, final=False) + frame(b"x" * 600, 0), "over 1000"),
])
def test_what_no_server_may_send_is_a_protocol_error(pair, wire, problem):
    server, client = pair
    server.sendall(wire)
    with pytest.raises(ProtocolError, match=problem):
        read_all(FrameReader(client, max_message=1000), 3)
