"""`websocket_frames`: several messages framed for one write to an agent's socket, read back by
the `websockets` library's own frame parser (sans-I/O), as a client reads them."""

from __future__ import annotations

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from contactcenter.server.agent_ws import websocket_frames


def read_frames(data: bytes) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("a frame was cut short")
    return frames


def test_each_length_encoding_reads_back_as_its_own_whole_text_message() -> None:
    # 7-bit lengths end at 125, 16-bit at 65,535; the texts straddle both edges, and are not
    # all ASCII: a length counts bytes, not characters.
    texts = ["", "a" * 125, "b" * 126, "王芳" * 21_845, "c" * 65_535, "d" * 65_536,
             '{"seq":7,"type":"status","status":"away"}']
    frames = read_frames(websocket_frames(texts))
    assert [f.opcode for f in frames] == [Opcode.TEXT] * len(texts)
    assert all(f.fin for f in frames)
    assert [f.data.decode() for f in frames] == texts


def test_nothing_framed_is_nothing_written() -> None:
    assert websocket_frames([]) == b""
