"""A schemathesis run over the OpenAPI schema, against the live server: no 500, no answer
that breaks the schema, every status documented. Bounded examples keep it well under a minute.

Each operation's strategy is drawn by Hypothesis directly: schemathesis's pytest loader
(``from_fixture``) does not run on pytest 9. Every default check runs except "schema-valid
data is accepted": an opaque cursor, an unknown asset or a deposit over FUNDS_MAX_AMOUNT is
well-formed yet rightly refused, and no JSON Schema can say which ones will be.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

#: Examples per operation and generation mode.
EXAMPLES = 12
#: The security schemes' parameters: we always send a valid token instead.
CREDENTIALS = {"Authorization", "sessionid"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_answers_as_documented(live_server, link, spare_accounts, settings_override, mode):
    user = link(spare_accounts[4], spare_accounts[5])
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    api = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema?format=json",
        headers={"Authorization": f"Bearer {settings_override}"},  # the schema is for staff
    )
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 16  # the portfolio API's 14, the socket ticket, the stats

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not negatable(operation):
            continue  # nothing of its own to send wrong: the positive run covers it

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case) -> None:
            case.call_and_validate(
                headers=headers, timeout=30, excluded_checks=[positive_data_acceptance]
            )

        answers_as_documented()


def negatable(operation) -> bool:
    """Whether the operation takes anything besides credentials (a parameter or a body)."""
    own = [p for p in operation.iter_parameters() if p.name not in CREDENTIALS]
    return bool(own or operation.get_request_payload_content_types())


@pytest.fixture
def settings_override(settings, redis_client) -> str:
    """No throttle, and the operations token (returned) that opens the schema."""
    settings.API_THROTTLE_RATE = "none"  # hundreds of requests a second, on purpose
    settings.OPS_TOKEN = "schemathesis-ops-token"
    return settings.OPS_TOKEN


@pytest.mark.django_db
def test_docs_are_served_from_the_project_not_a_cdn(admin_client):
    client = admin_client  # the docs are for staff (tests/security/test_ops_access.py)
    schema = client.get("/api/schema?format=json")
    docs = client.get("/api/docs").content.decode()

    assert schema.status_code == 200
    assert "## Money" in schema.json()["info"]["description"]
    assert "cdn" not in docs.lower()
    bundle = next(part.split('"')[0] for part in docs.split('src="')[1:] if "swagger" in part)
    assert bundle.startswith("/static/drf_spectacular_sidecar/")
    assert client.get(bundle).status_code == 200
