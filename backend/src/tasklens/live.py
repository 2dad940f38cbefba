"""Fan-out of lifecycle events to this process's WebSocket clients.

Each event is serialised once for every client: its JSON, and its WebSocket frame (server
frames are unmasked and, without compression, the same bytes for everyone); each broadcast
round's frames are joined once into one bytes object. A client holds references to the hub's
batches, so a broadcast costs one append per client, not one per client and event, and a
client that keeps up writes the shared bytes as they are, with no copy of its own.

A client whose socket takes writes at once (api/ws_protocol.py) and has nothing waiting is
written to by the hub itself, in the broadcast's turn: no wake of its sender task, no timer,
no await per client. Only a client with something waiting (the hello, a replay, a backlog) or
a full socket goes through its sender, which keeps the order and the send timeout.

Each client has its own bounded buffer and sender task: a slow or dead client loses its
oldest events (and is told how many) instead of holding up anybody else, and a client that
does not take a send within the send timeout is dropped (api/routes/live.py).

The hub caps the sockets it serves, per process and per token: past either cap `connect()`
answers None and the route closes the socket with 1008.

A client that resumes (`?since=<event id>`) is connected first, so live events start
collecting in its buffer, then gets the retained events after its id put in front of them;
live ones it already got in the replay are skipped by id. Nothing between is lost, nothing
is sent twice. A client that asks for a backfill (`?backfill=50`) gets the newest retained
events the same way, so the dashboard's feed opens on what just happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence

import orjson
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

from tasklens.tracking.event_stream import Event, EventStream

logger = logging.getLogger(__name__)


class Frame:
    """One message to the clients, with the id of the event it carries ("" for frames that
    are not events). Its text and its WebSocket frame are built at most once."""

    __slots__ = ("_text", "_wire", "id", "payload")

    def __init__(self, frame_id: str, payload: bytes) -> None:
        self.id = frame_id
        self.payload = payload
        self._text: str | None = None
        self._wire: bytes | None = None

    @classmethod
    def notice(cls, message: Mapping[str, object]) -> Frame:
        return cls("", json.dumps(message).encode())

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text

    @property
    def wire(self) -> bytes:
        """The unmasked, uncompressed text frame, as written to every client's socket."""
        if self._wire is None:
            self._wire = WireFrame(Opcode.TEXT, self.payload).serialize(mask=False)
        return self._wire


RESYNC = {"type": "resync"}
FAN_OUT_SLICE = 50  # clients woken per turn of the event loop, at most
FAN_OUT_BYTES = 512 * 1024  # what the clients woken in one turn write, about
FRAMES_PER_TURN = 500  # events decoded, or serialised, per turn of the event loop


class Batch:
    """Frames handed to every client at once (a broadcast round, a notice). Its wire bytes,
    the frames' WebSocket frames back to back, are joined once for every client: each client
    that keeps up writes the same bytes object, with no copy of its own."""

    __slots__ = ("_wire", "frames")

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = frames
        self._wire: bytes | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def notice(cls, message: Mapping[str, object]) -> Batch:
        return cls([Frame.notice(message)])

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = b"".join(frame.wire for frame in self.frames)
        return self._wire


class LiveClient:
    def __init__(self, name: str, max_buffered: int) -> None:
        self.name = name
        self._batches: deque[Batch] = deque()
        self._buffered = 0
        self._max = max_buffered
        self._wake = asyncio.Event()
        self._replayed_up_to = ""
        self._sending = False
        self.dropped = 0
        # writes prebuilt frames at once, or says it cannot (socket full, closing)
        self.direct: Callable[[bytes], bool] | None = None

    def offer(self, batch: Batch) -> None:
        """Writes `batch` at once when the client keeps up (see `direct`); else buffers it."""
        if (
            self.direct is not None
            and not self._batches
            and not self._sending
            and not self._replayed_up_to
            and self.direct(batch.wire)
        ):
            return
        self._queue(batch)

    def _queue(self, batch: Batch) -> None:
        """Keeps a reference to `batch` (shared with the other clients: never changed). Past
        the buffer's cap whole batches go, the oldest first, as long as the rest still holds
        the cap's worth: a client that lags keeps the newest `max_buffered` events or a few
        more, and writes the shared bytes rather than joining a trimmed copy of its own."""
        if self._replayed_up_to:
            frames = batch.frames
            if frames and frames[0].id and frames[0].id > self._replayed_up_to:
                self._replayed_up_to = ""  # ids only grow: the replay is behind us
            else:
                batch = Batch([f for f in frames if not f.id or f.id > self._replayed_up_to])
        if not batch:
            return
        self._batches.append(batch)
        self._buffered += len(batch)
        while self._buffered - len(self._batches[0]) >= self._max:  # drop the oldest
            lost = len(self._batches.popleft())
            self._buffered -= lost
            self.dropped += lost
        self._wake.set()

    def resume(self, replayed: list[Event] | None) -> None:
        """Put the replay (or a resync notice, for None) before the live events buffered
        since this client connected, without the ones the replay already has."""
        buffered = [frame for batch in self._batches for frame in batch.frames]
        head: list[Frame] = []  # the hello (frames that are not events) stays first
        while buffered and not buffered[0].id:
            head.append(buffered.pop(0))
        if replayed is None:
            head.append(Frame.notice(RESYNC))
        elif replayed:
            self._replayed_up_to = str(replayed[-1]["id"])
            head += frames_of(replayed)
            buffered = [f for f in buffered if f.id > self._replayed_up_to]
        self._batches = deque([Batch(head + buffered)])
        self._buffered = len(head) + len(buffered)
        self._wake.set()

    async def next_batches(self) -> list[Batch]:
        """Waits for frames; a drop notice comes first when events were lost. Until the
        caller calls `sent()`, the hub buffers rather than writes: it would overtake them."""
        self._sending = False
        await self._wake.wait()
        self._wake.clear()
        self._sending = True
        batches = list(self._batches)
        self._batches.clear()
        self._buffered = 0
        if self.dropped:
            batches.insert(0, Batch.notice({"type": "events_dropped", "count": self.dropped}))
            self.dropped = 0
        return batches

    def sent(self) -> None:
        """The batches of the last `next_batches()` are written: the hub may write again."""
        self._sending = False


class LiveHub:
    """Broadcast rounds adapt to what they cost: after a round the hub pauses as long as the
    round took, at most half of `broadcast_interval`, then sends all that came meanwhile. With
    few clients a round takes a fraction of a millisecond, so each event goes as soon as it is
    read; with thousands the rounds space out and carry more events each, the fan-out keeps to
    about half of the loop, and the requests this process serves get the rest."""

    def __init__(
        self,
        bus: EventStream,
        max_buffered_per_client: int = 1000,
        max_clients: int = 2000,
        max_clients_per_token: int = 100,
        broadcast_interval: float = 0.05,
    ) -> None:
        self._bus = bus
        self._clients: set[LiveClient] = set()
        self._per_token: Counter[str] = Counter()
        self._max = max_buffered_per_client
        self._max_clients = max_clients
        self._max_per_token = max_clients_per_token
        self._interval = broadcast_interval
        self._incoming: list[Event] = []
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def connect(self, name: str) -> LiveClient | None:
        """A new client of token `name`; None when this process or that token is at its cap."""
        if len(self._clients) >= self._max_clients:
            return None
        if self._per_token[name] >= self._max_per_token:
            return None
        client = LiveClient(name, self._max)
        self._clients.add(client)
        self._per_token[name] += 1
        return client

    async def replay(self, since: str) -> list[Event] | None:
        try:
            return await self._bus.replay(since)
        except Exception as exc:  # Redis down: the client refetches from the log instead
            logger.warning("live events: replay failed (%s); asking for a resync", exc)
            return None

    async def latest(self, count: int) -> list[Event]:
        try:
            return await self._bus.latest(count)
        except Exception as exc:  # Redis down: the feed starts empty and fills as events come
            logger.warning("live events: backfill failed (%s); sending none", exc)
            return []

    def disconnect(self, client: LiveClient) -> None:
        if client in self._clients:
            self._clients.remove(client)
            self._per_token[client.name] -= 1
            if self._per_token[client.name] <= 0:
                del self._per_token[client.name]

    def broadcast(self, events: list[Event]) -> None:
        batch = Batch(frames_of(events))
        for client in list(self._clients):
            client.offer(batch)

    async def start(self, timeout: float = 5.0) -> None:
        """Returns once subscribed, so no event published after startup is missed."""
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._read(ready), name="tasklens-live-read"),
            asyncio.create_task(self._fan_out(), name="tasklens-live-fan-out"),
        ]
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            logger.warning("live events: not subscribed after %.0fs; still trying", timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _read(self, ready: asyncio.Event) -> None:
        """A read that returns many stream entries (a burst, or a catch-up after a stall) is
        decoded a few hundred events per turn of the loop, between requests."""
        decoded = 0
        async for batch in self._bus.subscribe(ready):
            self._incoming += batch
            self._arrived.set()
            decoded += len(batch)
            if decoded >= FRAMES_PER_TURN:
                decoded = 0
                await asyncio.sleep(0)

    async def _fan_out(self) -> None:
        """Hands each batch to the clients a slice at a time, yielding the loop between (the
        hub writes to the clients that keep up, the senders of the others write in the next
        turns): a request never waits behind every client's write at once. Under more load
        than the CPU can take, the rounds slow down and carry bigger batches; the requests
        keep their turn."""
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            began = loop.time()
            events, self._incoming = self._incoming, []
            frames: list[Frame] = []
            for start in range(0, len(events), FRAMES_PER_TURN):  # a burst: built in turns
                chunk = events[start : start + FRAMES_PER_TURN]
                frames += frames_of(chunk, wire=bool(self._clients))
                if start + FRAMES_PER_TURN < len(events):
                    await asyncio.sleep(0)
            batch = Batch(frames)
            clients = list(self._clients)
            # joined here, once, not in the first client's send; the clients woken per turn
            # write at most about FAN_OUT_BYTES between them (a burst: a few per turn)
            size = len(batch.wire) if clients else 1
            per_turn = max(1, min(FAN_OUT_SLICE, FAN_OUT_BYTES // max(1, size)))
            for start in range(0, len(clients), per_turn):
                for client in clients[start : start + per_turn]:
                    client.offer(batch)
                await asyncio.sleep(0)
            await asyncio.sleep(min(loop.time() - began, self._interval / 2))


def frames_of(events: list[Event], wire: bool = False) -> list[Frame]:
    """`wire`: build the WebSocket frames now, in the hub's turn, rather than in the first
    client's send, which would then take the whole batch's cost in one turn."""
    frames = [Frame(str(event.get("id", "")), orjson.dumps(event, default=str)) for event in events]
    if wire:
        for frame in frames:
            _ = frame.wire
    return frames
