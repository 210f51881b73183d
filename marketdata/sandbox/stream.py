"""STUB — being replaced by its owner. Market-data websockets."""
import asyncio

from aiohttp import web


class StreamHub:
    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[web.RouteDef]:
        return []

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def close_all(self) -> None:
        return None

    async def drop_all(self) -> int:
        return 0

    def stats(self) -> dict:
        return {}
