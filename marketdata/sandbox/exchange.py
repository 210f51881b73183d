"""STUB — being replaced by its owner. Order filling and transfer settlement."""
import asyncio


class Exchange:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    async def run(self) -> None:
        await asyncio.Event().wait()

    def stats(self) -> dict:
        return {}
