"""Reading WebSocket frames in bulk off a connection that websocket-client opened.

websocket-client reads each frame with two or three `recv()` calls, each through its
timeout path, and builds a frame object per message: at a whole market's rate that is most
of the stream thread's time. After the handshake, this reader takes over the socket's
incoming side: one `recv_into` fills a buffer with whatever has arrived (often hundreds of
frames), and every whole frame in it is sliced out at once. Sending (SUBSCRIBE, pongs,
close) stays with websocket-client, which masks what a client sends.

Frames from a server are not masked (RFC 6455 5.1); one that is, a reserved bit, an unknown
opcode, a fragmented or oversized control frame, or a message above `max_message` bytes is
a protocol error: the connection is dropped, as websocket-client would.
"""

from __future__ import annotations

import socket
import ssl
import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({TEXT, BINARY})
CONTROL_OPCODES = frozenset({CLOSE, PING, PONG})
WHOLE_DATA = frozenset({0x80 | TEXT, 0x80 | BINARY})  # first byte: FIN, no flags, the opcode
READ_BYTES = 1 << 18
MAX_MESSAGE = 1 << 22  # Binance's frames are under a kilobyte; an answer, a few kilobytes

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class ProtocolError(Exception):
    """What the server sent is not a WebSocket stream a client can accept."""


class ConnectionClosed(Exception):
    """The server closed the TCP connection."""


class FrameReader:
    """Whole frames off a connected socket, as many as one read brings.

    `read()` waits at most the socket's timeout for bytes and returns every frame they
    complete, as (opcode, payload) pairs: an empty list when nothing whole arrived in time.
    Fragmented messages are joined; control frames may come between their fragments.
    """

    def __init__(self, sock: socket.socket, *, max_message: int = MAX_MESSAGE) -> None:
        self.sock = sock
        self.max_message = max_message
        self._buffer = bytearray(READ_BYTES)
        self._view = memoryview(self._buffer)
        self._start = 0  # first unparsed byte
        self._end = 0  # end of the bytes read
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_bytes = 0

    def read(self) -> list[tuple[int, bytes]]:
        """The frames that the next read completes (waits up to the socket's timeout)."""
        self._make_room()
        try:
            count = self.sock.recv_into(self._view[self._end:])
        except (TimeoutError, ssl.SSLWantReadError):
            return []
        if count == 0:
            raise ConnectionClosed("the server closed the connection")
        self._end += count
        return self._frames()

    def _make_room(self) -> None:
        """Move the unparsed tail to the front, growing the buffer for a long frame."""
        if self._start:
            tail = self._end - self._start
            self._buffer[:tail] = self._buffer[self._start:self._end]
            self._start, self._end = 0, tail
        if self._end == len(self._buffer):  # a frame longer than the buffer: grow it
            if len(self._buffer) >= self.max_message + 14:
                raise ProtocolError(f"a frame over {self.max_message} bytes")
            self._view.release()
            self._buffer.extend(bytes(len(self._buffer)))
            self._view = memoryview(self._buffer)

    def _frames(self) -> list[tuple[int, bytes]]:
        frames: list[tuple[int, bytes]] = []
        buffer, end, position = self._buffer, self._end, self._start
        while (size := self._size(position, end)) is not None:
            header, length = size
            stop = position + header + length
            if stop > end:
                break
            first, payload = buffer[position], bytes(buffer[position + header:stop])
            position = stop
            if first in WHOLE_DATA:  # the common case: a whole text or binary message
                if self._fragments:
                    raise ProtocolError("a new message inside a fragmented one")
                frames.append((first & 0x0F, payload))
            elif (message := self._frame(first, payload)) is not None:
                frames.append(message)
        self._start = position
        return frames

    def _size(self, position: int, end: int) -> tuple[int, int] | None:
        """(header bytes, payload bytes) of the frame at `position`, None if its header
        has not all arrived."""
        buffer = self._buffer
        if end - position < 2:
            return None
        second = buffer[position + 1]
        if second & 0x80:
            raise ProtocolError("the server masked a frame")
        length, header = second & 0x7F, 2
        if length == 126:
            if end - position < 4:
                return None
            length, header = _U16.unpack_from(buffer, position + 2)[0], 4
        elif length == 127:
            if end - position < 10:
                return None
            length, header = _U64.unpack_from(buffer, position + 2)[0], 10
        if length > self.max_message:
            raise ProtocolError(f"a frame of {length} bytes, over {self.max_message}")
        return header, length

    def _frame(self, first: int, payload: bytes) -> tuple[int, bytes] | None:
        """A frame other than a whole text or binary message: fragments and control."""
        if first & 0x70:
            raise ProtocolError("a reserved bit is set (no extension was agreed)")
        final, opcode = bool(first & 0x80), first & 0x0F
        if opcode in CONTROL_OPCODES:
            if not final or len(payload) > 125:
                raise ProtocolError("a fragmented or oversized control frame")
            return opcode, payload
        if opcode in DATA_OPCODES:
            if self._fragments:
                raise ProtocolError("a new message inside a fragmented one")
            self._fragment_opcode = opcode
        elif opcode != CONTINUATION or not self._fragments:
            raise ProtocolError(f"unexpected opcode {opcode:#x}")
        self._fragment_bytes += len(payload)
        if self._fragment_bytes > self.max_message:
            raise ProtocolError(f"a message over {self.max_message} bytes")
        self._fragments.append(payload)
        if not final:
            return None
        message = b"".join(self._fragments)
        self._fragments, self._fragment_bytes = [], 0
        return self._fragment_opcode, message
