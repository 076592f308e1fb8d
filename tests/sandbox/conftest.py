"""Fixtures for the sandbox tests: SDK clients pointed at the per-test sandbox (or at Stripe test mode)."""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import SandboxServer
from tests.sandbox.support import STRIPE_TEST_KEY, Api, sandbox_client


@pytest.fixture
def client(sandbox: SandboxServer) -> stripe.StripeClient:
    return sandbox_client(sandbox)


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Api:
    if STRIPE_TEST_KEY:
        return Api(stripe.StripeClient(STRIPE_TEST_KEY, max_network_retries=2), None)
    sandbox: SandboxServer = request.getfixturevalue("sandbox")
    return Api(sandbox_client(sandbox), sandbox)
