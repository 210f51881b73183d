"""Run a real alpaca-py data stream on its own thread, as the SDK's traps require."""

import asyncio
import threading

from alpaca.data.live.websocket import DataStream

from marketdata import compat


class StreamThread:
    """An SDK stream on its own thread and event loop, with the SDK's own reconnect loop.

    ``run()`` would call ``asyncio.run`` and cannot share a loop, and ``subscribe_*`` called
    on the stream's own loop deadlocks; so the stream gets a thread, and callers subscribe
    from theirs. Stopping also closes the socket: the SDK only looks at its stop flag
    between messages, which on a quiet subscription can take five seconds.

    A subclass may follow the stream its own way (:meth:`follow`), setting ``ready`` once
    callers may subscribe.
    """

    start_timeout = 5.0

    def __init__(self, stream: DataStream) -> None:
        self.stream = stream
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.follow()

    async def follow(self) -> None:
        """Run the stream on this thread's loop until stopped."""
        self.ready.set()
        await compat.run_stream_forever(self.stream)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; return once callers may subscribe."""
        self._thread.start()
        if not self.ready.wait(timeout=self.start_timeout):
            raise RuntimeError(f"the stream thread was not ready within {self.start_timeout:g}s")

    async def _halt(self) -> None:
        await self.stream.stop_ws()
        await self.stream.close()

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._halt(), self.loop).result(timeout=5)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the stream thread did not stop")
