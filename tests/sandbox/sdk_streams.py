"""Run a real alpaca-py data stream on its own thread, as the SDK's traps require."""

import asyncio
import threading

from alpaca.data.live.websocket import DataStream


class StreamThread:
    """An SDK stream on its own thread and event loop, with the SDK's own reconnect loop.

    ``run()`` would call ``asyncio.run`` and cannot share a loop, and ``subscribe_*`` called
    on the stream's own loop deadlocks; so the stream gets a thread, and callers subscribe
    from theirs. Stopping also closes the socket: the SDK only looks at its stop flag
    between messages, which on a quiet subscription can take five seconds.
    """

    def __init__(self, stream: DataStream) -> None:
        self.stream = stream
        self.loop: asyncio.AbstractEventLoop | None = None
        self._running = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._running.set()
        await self.stream._run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._running.wait(timeout=5):
            raise RuntimeError("the stream thread did not start")

    async def _halt(self) -> None:
        await self.stream.stop_ws()
        await self.stream.close()

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._halt(), self.loop).result(timeout=5)
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the stream thread did not stop")
