"""Outbound webhooks for the shop's own systems, signed as Standard Webhooks do.

``outbox.enqueue`` writes an event (a message and one delivery per subscribed endpoint) in
the caller's transaction; ``delivery.Deliverer`` sends the due deliveries from every worker
process, at least once, with backoff; ``endpoints`` manages the endpoints and the
deliveries' log. Plain async code over an AsyncSession: it imports ``core`` only.
"""
