"""Delivery: from captured events to the sinks, without losing records.

- ``shipper``: the one place for threads (the builder, and each route's senders);
- ``route``: one sink's queue, calls in flight, backoff, and when records go to disk;
- ``packing``: JSON lines into items, items into calls, within a sink's limits;
- ``spool``: the disk spool of one destination; ``private_dir``: opening its directory safely.
"""
