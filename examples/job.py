"""An example job: it scrapes a few "shops", some of which fail, and records metrics.

Run it as the demo does (``python examples/demo.py``), or on its own with the stage and context
from the environment: ``DXTRACK_STAGE=test DXTRACK_CONTEXT=example-job python examples/job.py``.
"""

from __future__ import annotations

import random

import dxtrack

SHOPS = ["alpha", "beta", "gamma", "delta", "epsilon"]


class ShopUnavailable(Exception):
    """The shop's site did not answer."""


def fetch_products(shop: str) -> list[dict[str, object]]:
    """Pretend to download a shop's products; two shops fail, differently."""
    if shop == "gamma":
        raise ShopUnavailable(f"{shop}: HTTP 503")
    if shop == "delta":
        return [{"sku": "d-1", "price": "n/a"}]
    return [{"sku": f"{shop[0]}-{i}", "price": 10 + i} for i in range(random.randint(3, 9))]


def parse_price(product: dict[str, object]) -> float:
    """Parse a price; raises ValueError on junk."""
    return float(product["price"])  # type: ignore[arg-type]


def main() -> None:
    """Configure once at the entry point, then track errors and metrics."""
    dxtrack.configure(default_metadata={"job_version": "1.4.2"})
    bad_rows: list[Exception] = []
    for shop in SHOPS:
        try:
            products = fetch_products(shop)
        except ShopUnavailable:
            dxtrack.error(metadata={"shop": shop})  # the exception being handled
            continue
        for product in products:
            try:
                parse_price(product)
            except ValueError as exc:
                bad_rows.append(exc)
        dxtrack.metric("products.downloaded", len(products), metadata={"shop": shop})
    dxtrack.errors(bad_rows, metadata={"step": "parse_price"})  # caught earlier, reported at once
    for i in range(20):
        dxtrack.metric("loop.iteration.seconds", 0.01 * i, metadata={"i": i})


if __name__ == "__main__":
    main()
