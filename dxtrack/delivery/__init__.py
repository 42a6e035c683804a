"""Delivery: from captured events to the sinks, without losing records.

- ``shipper``: the one place for threads (the builder, and each route's senders);
- ``buffers``: the capture buffer, and building its events into JSON lines;
- ``route``: one sink's queue, calls in flight, and when records go to disk;
- ``attempts``: one call to a sink, its outcome and backoff; delivery on the caller's thread;
- ``packing``: JSON lines into items, items into calls, within a sink's limits;
- ``spool``: the disk spool of one destination; ``segments``: its files;
  ``private_dir``: opening its directory safely.
"""
