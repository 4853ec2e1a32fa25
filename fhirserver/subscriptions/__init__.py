"""FHIR Subscriptions (Subscriptions R5 Backport IG for R4; docs/subscriptions.md).

- topics.py: the closed table of topics (canonical, focus type, trigger, allowed filters);
- spec.py: a Subscription's backport settings, checked on every write (400 naming the problem);
- ownership.py: only the creating token's owner (and administrators) reach a Subscription;
- state.py: the store records (who subscribed, event counters, the event log, the outbox);
- events.py: the write hook: events recorded in the same store transaction as the change;
- notification.py: the notification Bundles (handshake, heartbeat, event-notification, $status, $events);
- endpoint_guard.py, transport.py: which endpoints may be called, and the guarded POST;
- deliver.py: the worker's delivery pass (leases, handshake, heartbeat, retries with backoff).
"""
