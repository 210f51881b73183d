"""The broker gateway against the session's real sandbox, through the real alpaca-py client."""

import asyncio
import base64
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.conf import settings
from django.test import override_settings

from clera.devstack.ports import free_port
from marketdata import errors
from marketdata.broker import BrokerGateway, gateway

BAD_KEY = "wrong-key-5a1d"
BAD_SECRET = "wrong-secret-9f3c7e"


@pytest.fixture(scope="module")
def account_by_shape(sandbox_url: str) -> dict[str, str]:
    """The first sandbox account of each shape (diversified, crypto, empty...), by shape."""
    response = requests.get(f"{sandbox_url}/_sandbox/accounts", timeout=5)
    response.raise_for_status()
    accounts: dict[str, str] = {}
    for account in response.json()["accounts"]:
        accounts.setdefault(account["shape"], account["id"])
    return accounts


@pytest.fixture(scope="module")
def scratch_account(sandbox_url: str) -> str:
    """A funded account from the end of the list, for tests that write (orders, funding): the
    first few, one per shape, are left as generated for everyone else."""
    response = requests.get(f"{sandbox_url}/_sandbox/accounts", timeout=5)
    response.raise_for_status()
    accounts = response.json()["accounts"]
    return next(a["id"] for a in reversed(accounts) if a["shape"] not in ("empty", "cash_only"))


@pytest.fixture
def broker(sandbox_url: str) -> BrokerGateway:
    return BrokerGateway()


@pytest.fixture(scope="module")
def stock(sandbox_url: str) -> str:
    """A US stock's symbol from the sandbox's universe."""
    return next(
        asset.symbol for asset in BrokerGateway().assets() if asset.asset_class == "us_equity"
    )


#: What a broken broker answers, by path: (status, headers, body).
BROKEN_ANSWERS = {
    "/v1/clock": (200, {}, b"<html>maintenance</html>"),
    "/v1/assets/AAPL": (200, {}, b'{"id": "x", "symbol": "AAPL"}'),
    "/v1/trading/accounts/00000000-0000-4000-8000-000000000000/positions": (
        200,
        {},
        b'[{"asset_id": "x", "symbol": "AAPL", "qty": "ten"}]',
    ),
}


@pytest.fixture(scope="module")
def broken_broker() -> Iterator[str]:
    """A server on loopback that answers Alpaca's paths with what Alpaca never should."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/v1/assets":
                in_30s = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
                status, headers, body = 429, {"Retry-After": in_30s}, b"{}"
            else:
                status, headers, body = BROKEN_ANSWERS[self.path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts on what the gateway logs."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _money(*values: object) -> bool:
    return all(isinstance(value, Decimal) for value in values)


# --- Typed results ----------------------------------------------------------------------------


def test_account_snapshot_is_exact_and_consistent(broker, account_by_shape):
    account_id = account_by_shape["diversified"]

    snapshot = broker.account(account_id)

    assert snapshot.id == account_id
    assert snapshot.status == "ACTIVE"
    assert _money(
        snapshot.cash,
        snapshot.equity,
        snapshot.last_equity,
        snapshot.long_market_value,
        snapshot.short_market_value,
        snapshot.buying_power,
    )
    assert snapshot.long_market_value > 0
    # Short market value is negative on Alpaca's wire, so equity is a plain sum.
    assert snapshot.equity == (
        snapshot.cash + snapshot.long_market_value + snapshot.short_market_value
    )
    assert isinstance(snapshot.created_at, datetime) and snapshot.created_at.tzinfo is not None


def test_positions_keep_every_digit(broker, account_by_shape):
    account_id = account_by_shape["diversified"]

    positions = broker.positions(account_id)

    assert positions
    for position in positions:
        assert position.account_id == account_id
        assert _money(position.qty, position.avg_entry_price, position.cost_basis)
        assert _money(position.market_value, position.current_price, position.unrealized_pl)
        if position.asset_class == "us_equity":
            assert position.market_value == position.qty * position.current_price


def test_short_position_reports_its_side(broker, account_by_shape):
    positions = broker.positions(account_by_shape["short"])

    shorts = [position for position in positions if position.side == "short"]
    assert shorts
    assert all(position.qty < 0 for position in shorts)


def test_all_positions_is_every_account_in_one_call(broker, account_by_shape):
    diversified = account_by_shape["diversified"]

    everything = broker.all_positions()

    assert isinstance(everything.as_of, datetime)
    held = everything.positions[diversified]
    assert {(p.symbol, p.qty) for p in held} == {
        (p.symbol, p.qty) for p in broker.positions(diversified)
    }
    assert all(p.account_id == diversified for p in held)
    assert not everything.positions.get(account_by_shape["empty"])


def test_asset_by_symbol_by_id_and_crypto_pair(broker):
    assets = broker.assets(status="active")
    pair = next(asset for asset in assets if asset.asset_class == "crypto" and "/" in asset.symbol)
    stock = next(asset for asset in assets if asset.asset_class == "us_equity")

    assert broker.asset(pair.symbol) == pair
    assert broker.asset(uuid.UUID(stock.id)) == stock
    assert broker.asset(stock.symbol).tradable is True


def test_clock_is_typed(broker):
    clock = broker.clock()

    assert isinstance(clock.is_open, bool)
    assert clock.next_open.tzinfo is not None and clock.next_close.tzinfo is not None


def test_submitted_order_comes_back_exact_and_listed(broker, scratch_account, stock):
    account_id = scratch_account
    client_order_id = f"gateway-test-{uuid.uuid4()}"

    order = broker.submit_order(
        account_id,
        stock,
        Decimal("1"),
        "buy",
        type="limit",
        time_in_force="gtc",
        limit_price=Decimal("0.01"),
        client_order_id=client_order_id,
    )

    assert order.client_order_id == client_order_id
    assert (order.symbol, order.side, order.type) == (stock, "buy", "limit")
    assert order.qty == Decimal("1") and order.limit_price == Decimal("0.01")
    assert _money(order.filled_qty)
    listed = broker.orders(account_id, status="all", limit=500)
    assert order.id in {listed_order.id for listed_order in listed}


def test_activities_come_one_page_at_a_time(broker, account_by_shape):
    account_id = account_by_shape["diversified"]

    first, token = broker.activities(account_id, page_size=3)
    second, _ = broker.activities(account_id, page_size=3, page_token=token)

    assert len(first) == 3 and token == first[-1].id
    assert second and not {a.id for a in first} & {a.id for a in second}
    assert all(a.account_id == account_id for a in first + second)
    fills, _ = broker.activities(account_id, activity_types=["FILL"], page_size=5)
    assert fills and all(a.activity_type == "FILL" for a in fills)
    assert all(_money(a.qty, a.price) and a.at is not None for a in fills)


def test_last_page_has_no_token(broker, account_by_shape):
    deposits, token = broker.activities(
        account_by_shape["cash_only"], activity_types=["CSD"], page_size=100
    )

    assert deposits and token is None
    assert all(_money(a.net_amount) and a.net_amount > 0 for a in deposits)


def test_funding_round_trip(broker, scratch_account):
    account_id = scratch_account
    approved = next(r for r in broker.ach_relationships(account_id) if r.status == "APPROVED")

    linked = broker.create_ach_relationship(
        account_id, "Pat Gateway", "CHECKING", "123456789", "121000358", nickname="gateway test"
    )
    transfer = broker.create_transfer(account_id, Decimal("250.10"), "INCOMING", approved.id)

    assert (linked.account_id, linked.nickname) == (account_id, "gateway test")
    assert linked.id in {r.id for r in broker.ach_relationships(account_id)}
    assert transfer.amount == Decimal("250.10") and _money(transfer.amount)
    assert (transfer.direction, transfer.relationship_id) == ("INCOMING", approved.id)
    assert transfer.id in {t.id for t in broker.transfers(account_id, limit=100)}


def test_portfolio_history_lines_up(broker, account_by_shape):
    history = broker.portfolio_history(account_by_shape["diversified"], period="1Y", timeframe="1D")

    assert history.timeframe == "1D"
    assert len(history.timestamps) >= 2
    assert len(history.equity) == len(history.profit_loss) == len(history.timestamps)
    assert all(value is None or _money(value) for value in history.equity)
    assert all(_money(*amounts) for amounts in history.cashflow.values())
    assert list(history.timestamps) == sorted(history.timestamps)


# --- Invalid arguments never leave the process --------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.account("not-a-uuid"),
        lambda b: b.asset("../accounts/positions"),
        lambda b: b.asset("AAPL?x=1"),
        lambda b: b.submit_order(uuid.uuid4(), "AAPL", 1.5, "buy"),
        lambda b: b.submit_order(uuid.uuid4(), "AAPL", Decimal(1), "buy", type="limit"),
        lambda b: b.submit_order(uuid.uuid4(), "AAPL", Decimal(1), "hold"),
        lambda b: b.create_transfer(uuid.uuid4(), Decimal("10.005"), "INCOMING", uuid.uuid4()),
        lambda b: b.orders(uuid.uuid4(), status="sideways"),
    ],
)
def test_invalid_arguments_are_rejected_before_sending(call, faults):
    faults(server_error=1)  # anything that reached the sandbox would come back Unavailable

    with pytest.raises(errors.BrokerRejected):
        call(BrokerGateway())


# --- Failures map to our errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda b, a: b.account(a),
        lambda b, a: b.positions(a),
        lambda b, a: b.orders(a),
        lambda b, a: b.portfolio_history(a),
    ],
)
def test_unknown_account_is_not_found(broker, call):
    with pytest.raises(errors.BrokerNotFound):
        call(broker, str(uuid.uuid4()))


def test_unknown_symbol_is_not_found(broker):
    with pytest.raises(errors.BrokerNotFound):
        broker.asset("NOSUCHSYM")


@pytest.mark.parametrize("call", [lambda b, a: b.clock(), lambda b, a: b.account(a)])
def test_wrong_credentials_are_forbidden_and_never_shown(call, account_by_shape, caplog):
    with override_settings(ALPACA_BROKER_CREDENTIALS=(BAD_KEY, BAD_SECRET)):
        bad = BrokerGateway()
    caplog.set_level(logging.DEBUG)

    with pytest.raises(errors.BrokerForbidden) as caught:
        call(bad, account_by_shape["diversified"])

    encoded = base64.b64encode(f"{BAD_KEY}:{BAD_SECRET}".encode()).decode()
    for leak in (BAD_SECRET, BAD_KEY, encoded):
        assert leak not in str(caught.value) and leak not in repr(caught.value)
        assert leak not in caplog.text
    # No SDK exception rides along either (its request carries the Authorization header).
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    warnings = [r for r in caplog.records if r.name == "marketdata.broker"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_rate_limit_fails_fast_with_retry_after(broker, faults, caplog):
    faults(rate_limited=1, retry_after=7)

    started = time.monotonic()
    with pytest.raises(errors.BrokerRateLimited) as caught:
        broker.clock()

    assert time.monotonic() - started < 2  # the SDK's own retries would sleep about 9 s
    assert caught.value.retry_after == 7.0 and caught.value.status == 429
    (record,) = [r for r in caplog.records if r.name == "marketdata.broker"]
    assert "clock" in record.getMessage() and "429" in record.getMessage()


def test_server_error_is_unavailable(broker, faults, account_by_shape):
    faults(server_error=1)

    with pytest.raises(errors.BrokerUnavailable) as caught:
        broker.positions(account_by_shape["diversified"])

    assert caught.value.status == 500


def test_slow_answer_times_out(faults):
    faults(slow=1, slow_seconds=3)
    with override_settings(ALPACA_TIMEOUT=0.5):
        impatient = BrokerGateway()

    started = time.monotonic()
    with pytest.raises(errors.BrokerTimeout):
        impatient.clock()

    assert time.monotonic() - started < 1.2


def test_nobody_listening_is_unavailable(sandbox_url):
    with override_settings(ALPACA_BROKER_URL=f"http://127.0.0.1:{free_port()}"):
        nowhere = BrokerGateway()

    with pytest.raises(errors.BrokerUnavailable):
        nowhere.clock()


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.clock(),
        lambda b: b.asset("AAPL"),
        lambda b: b.positions("00000000-0000-4000-8000-000000000000"),
    ],
)
def test_unreadable_answers_are_unavailable(broken_broker, call):
    with override_settings(ALPACA_BROKER_URL=broken_broker):
        broken = BrokerGateway()

    with pytest.raises(errors.BrokerUnavailable):
        call(broken)


def test_retry_after_may_be_an_http_date(broken_broker):
    with override_settings(ALPACA_BROKER_URL=broken_broker):
        broken = BrokerGateway()

    with pytest.raises(errors.BrokerRateLimited) as caught:
        broken.assets()

    assert 25 < caught.value.retry_after <= 30


def test_order_beyond_buying_power_is_rejected_with_alpacas_reason(broker, scratch_account, stock):
    with pytest.raises(errors.BrokerRejected) as caught:
        broker.submit_order(scratch_account, stock, Decimal("10000000"), "buy")

    assert caught.value.status == 403
    assert "buying power" in caught.value.message


# --- The process gateway and its async facade -------------------------------------------------


def test_one_gateway_per_process_rebuilt_when_settings_change(sandbox_url):
    first = gateway()

    assert gateway() is first
    with override_settings(ALPACA_TIMEOUT=settings.ALPACA_TIMEOUT + 1):
        assert gateway() is not first


async def test_async_calls_leave_the_event_loop_free(faults):
    faults(slow=1, slow_seconds=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(BrokerGateway().aio.asset(f"NOSUCH{n}") for n in range(4)), return_exceptions=True
        )
    finally:
        ticking.cancel()

    elapsed = time.monotonic() - started
    assert all(isinstance(outcome, errors.BrokerNotFound) for outcome in outcomes)
    assert 1 <= elapsed < 1.9  # four 1 s calls, side by side
    assert ticks >= 25  # the loop kept running throughout


def test_async_facade_offers_only_public_calls():
    facade = BrokerGateway().aio

    with pytest.raises(AttributeError):
        facade._call  # noqa: B018
    with pytest.raises(AttributeError):
        facade.aio  # noqa: B018
