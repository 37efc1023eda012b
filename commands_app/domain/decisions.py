"""Command handlers' decisions: given loaded aggregates, produce changed aggregates.

Each function is plain Python: loading and saving belong to `commands_app.handlers`.
A returned aggregate carries its `pending_events`; its `version` is the version it
was loaded at, which the store checks when appending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from uuid import UUID

from .aggregate import AnyAggregate
from .commands import (
    CancelOrder,
    PayOrder,
    PlaceOrder,
    RegisterProduct,
    RequestedLine,
    RestockProduct,
    ShipOrder,
    UpdateOrder,
)
from .errors import (
    DuplicateIdError,
    DuplicateSkuError,
    OrderNotFoundError,
    ProductNotFoundError,
)
from .events import OrderLine
from .order import Order
from .product import Product

# Any aggregate, whatever the type of its id (the base is `aggregate.Aggregate`):
# what a decision returns, and handlers and the store take.
Aggregate = AnyAggregate


def register_product(
    command: RegisterProduct, *, existing: Product | None, sku_owner: UUID | None
) -> list[Aggregate]:
    if existing is not None and existing.version:
        raise DuplicateIdError(
            "A product with this id exists.", product_id=str(command.product_id)
        )
    if sku_owner is not None:
        raise DuplicateSkuError(
            f"SKU {command.sku!r} is already registered.",
            sku=command.sku,
            product_id=str(sku_owner),
        )
    return [
        Product.register(
            product_id=command.product_id,
            sku=command.sku,
            name=command.name,
            price_cents=command.price_cents,
            initial_stock=command.initial_stock,
        )
    ]


def restock_product(
    command: RestockProduct, *, product: Product | None
) -> list[Aggregate]:
    product = _existing_product(command.product_id, product)
    product.restock(command.quantity)
    return [product]


def place_order(
    command: PlaceOrder,
    *,
    existing: Order | None,
    products: Mapping[UUID, Product | None],
) -> list[Aggregate]:
    if existing is not None:
        raise DuplicateIdError(
            "An order with this id exists.", order_id=str(command.order_id)
        )
    quantities = _requested_quantities(command.lines)
    changed: list[Aggregate] = []
    lines = []
    for product_id, quantity in quantities.items():
        product = _existing_product(product_id, products.get(product_id))
        product.reserve(order_id=command.order_id, quantity=quantity)
        changed.append(product)
        lines.append(
            OrderLine(
                product_id=product_id,
                sku=product.sku,
                name=product.name,
                quantity=quantity,
                unit_price_cents=product.price_cents,
            )
        )
    order = Order.place(
        order_id=command.order_id,
        customer_id=command.customer_id,
        lines=tuple(lines),
        shipping_address=command.shipping_address,
    )
    return [order, *changed]


def pay_order(command: PayOrder, *, order: Order) -> list[Aggregate]:
    """Record the payment request; a second one waits for the first's outcome."""
    if order.customer_id != command.paid_by:
        raise OrderNotFoundError("No such order.", order_id=str(order.id))
    order.request_payment(payment_id=command.payment_id, card_last4=command.card_last4)
    return [order]


def cancel_order(
    command: CancelOrder, *, order: Order, products: Mapping[UUID, Product]
) -> list[Aggregate]:
    # Refused unless placed or paid: an order gives its stock back once, as
    # OrderCancelled and the releases are appended together or not at all.
    order.cancel(reason=command.reason, cancelled_by=command.cancelled_by)
    changed: list[Aggregate] = [order]
    for product_id, quantity in order.reserved_quantities().items():
        product = products[product_id]
        product.release(order_id=order.id, quantity=quantity)
        changed.append(product)
    return changed


def update_order(
    command: UpdateOrder, *, order: Order, products: Mapping[UUID, Product | None]
) -> list[Aggregate]:
    """Change an order's lines and address; move stock by the difference.

    Every check runs before anything is recorded: a refusal changes nothing.
    Lines already in the order keep the price they were ordered at; a product
    new to the order takes its catalogue price. Only the aggregates that
    changed are returned (none when the update asks for what the order has).
    """
    changed: dict[str, Aggregate] = {}
    if command.lines is not None:
        order.check_lines_changeable()
        before = order.reserved_quantities()
        after = _requested_quantities(command.lines)
        lines = _priced_lines(order, after, products)
        for product_id in dict.fromkeys([*before, *after]):
            delta = after.get(product_id, 0) - before.get(product_id, 0)
            product = _existing_product(product_id, products.get(product_id))
            if delta > 0:
                product.reserve(order_id=order.id, quantity=delta)
            elif delta < 0:
                product.release(order_id=order.id, quantity=-delta)
            if product.pending_events:
                changed[product.stream] = product
        order.change_lines(lines, changed_by=command.changed_by)
    if command.shipping_address is not None:
        order.change_shipping_address(
            command.shipping_address, changed_by=command.changed_by
        )
    if order.pending_events:
        return [order, *changed.values()]
    return list(changed.values())


def _requested_quantities(lines: tuple[RequestedLine, ...]) -> dict[UUID, int]:
    """Sum the requested quantity of each product, in the order first asked."""
    quantities: dict[UUID, int] = {}
    for requested in lines:
        quantities[requested.product_id] = (
            quantities.get(requested.product_id, 0) + requested.quantity
        )
    return quantities


def _priced_lines(
    order: Order,
    quantities: Mapping[UUID, int],
    products: Mapping[UUID, Product | None],
) -> tuple[OrderLine, ...]:
    ordered = {line.product_id: line for line in order.lines}
    lines = []
    for product_id, quantity in quantities.items():
        line = ordered.get(product_id)
        if line is None:
            product = _existing_product(product_id, products.get(product_id))
            line = OrderLine(
                product_id=product_id,
                sku=product.sku,
                name=product.name,
                quantity=quantity,
                unit_price_cents=product.price_cents,
            )
        lines.append(replace(line, quantity=quantity))
    return tuple(lines)


def ship_order(command: ShipOrder, *, order: Order) -> list[Aggregate]:
    order.ship(tracking_number=command.tracking_number)
    return [order]


def _existing_product(product_id: UUID, product: Product | None) -> Product:
    if product is None or not product.version:
        raise ProductNotFoundError("No such product.", product_id=str(product_id))
    return product
