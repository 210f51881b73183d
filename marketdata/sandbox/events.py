"""STUB — being replaced by its owner. Broker event streams (SSE)."""
from aiohttp import web


class EventLog:
    def routes(self, sandbox) -> list[web.RouteDef]:
        return []

    def stats(self) -> dict:
        return {}

    async def close_all(self) -> None:
        return None
