"""The local Alma sandbox: a stateful server answering the Alma subset of Stripe's v1 API.

A separate program (`python -m dashboard.sandbox`): it imports nothing else from `dashboard/`, and the
dashboard reaches it only over HTTP, exactly as it reaches Stripe.
"""
