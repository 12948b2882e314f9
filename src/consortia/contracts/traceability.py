"""Food traceability: a batch moves from farm to shop, every hand-over recorded on the ledger.

Any organisation may create a batch (it becomes the creator and first holder). The holder
hands it over to another organisation with `transfer`; that organisation takes it with
`receive`, which makes it the holder. Every step - creation, hand-over, receipt - is kept
with the block height, block time and transaction id, so `provenance` answers "where has this
lettuce been, and who says so?".

State (composite keys):
    ("batch", batch_id)        {"batch_id", "product", "origin", "quantity_kg", "creator",
                                "holder", "pending": the org it was handed to or None,
                                "steps": how many steps are recorded}
    ("step", batch_id, n)      {"org", "step", "location", "height", "timestamp_ms", "tx_id"}
                               n is 8 zero-padded digits, so a prefix query returns steps in order.

Deployed as source text: this file must pass the sandbox check (consortia.execution.sandbox).
"""

from consortia.contract import Contract, ContractError, view

TEXT_CHARS_MAX = 128
QUANTITY_KG_MAX = 10**9


def check_text(value, what):
    if not isinstance(value, str) or not 1 <= len(value) <= TEXT_CHARS_MAX:
        raise ContractError(f"{what} must be a str of 1..{TEXT_CHARS_MAX} characters")
    if "\x00" in value:
        raise ContractError(f"{what} may not contain \\x00")
    return value


def batch_key(ctx, batch_id):
    return ctx.composite_key("batch", batch_id)


def load(ctx, batch_id):
    check_text(batch_id, "batch_id")
    batch = ctx.get(batch_key(ctx, batch_id))
    if batch is None:
        raise ContractError(f"unknown batch {batch_id!r}")
    return batch


def record_step(ctx, batch, org, step, location):
    """Append a step to the batch's history; the caller stores the batch."""
    entry = {
        "org": org,
        "step": check_text(step, "step"),
        "location": check_text(location, "location"),
        "height": ctx.height,
        "timestamp_ms": ctx.timestamp_ms,
        "tx_id": ctx.tx_id,
    }
    number = f"{batch['steps']:08d}"
    ctx.put(ctx.composite_key("step", batch["batch_id"], number), entry)
    batch["steps"] = batch["steps"] + 1
    return entry


class Traceability(Contract):
    def create_batch(self, batch_id, product, origin, quantity_kg):
        ctx = self.ctx
        check_text(batch_id, "batch_id")
        check_text(product, "product")
        check_text(origin, "origin")
        if isinstance(quantity_kg, bool) or not isinstance(quantity_kg, int):
            raise ContractError("quantity_kg must be an integer")
        if not 0 < quantity_kg <= QUANTITY_KG_MAX:
            raise ContractError(f"quantity_kg must be in 1..{QUANTITY_KG_MAX}")
        key = batch_key(ctx, batch_id)
        if ctx.get(key) is not None:
            raise ContractError(f"batch {batch_id!r} already exists")
        org = ctx.caller.org
        batch = {
            "batch_id": batch_id,
            "product": product,
            "origin": origin,
            "quantity_kg": quantity_kg,
            "creator": org,
            "holder": org,
            "pending": None,
            "steps": 0,
        }
        record_step(ctx, batch, org, "created", origin)
        ctx.put(key, batch)
        ctx.emit(
            "BatchCreated",
            {
                "batch_id": batch_id,
                "product": product,
                "origin": origin,
                "quantity_kg": quantity_kg,
                "org": org,
            },
        )
        return batch

    def transfer(self, batch_id, to_org, step, location):
        ctx = self.ctx
        batch = load(ctx, batch_id)
        check_text(to_org, "to_org")
        org = ctx.caller.org
        if batch["holder"] != org:
            raise ContractError(f"only the holder ({batch['holder']}) may hand batch {batch_id!r} over")
        if batch["pending"] is not None:
            raise ContractError(
                f"batch {batch_id!r} is already handed to {batch['pending']}; it must receive it first"
            )
        if to_org == org:
            raise ContractError("a batch can't be handed to its own holder")
        entry = record_step(ctx, batch, org, step, location)
        batch["pending"] = to_org
        ctx.put(batch_key(ctx, batch_id), batch)
        ctx.emit(
            "BatchTransferred",
            {
                "batch_id": batch_id,
                "from": org,
                "to": to_org,
                "step": entry["step"],
                "location": entry["location"],
            },
        )
        return batch

    def receive(self, batch_id, step, location):
        ctx = self.ctx
        batch = load(ctx, batch_id)
        org = ctx.caller.org
        if batch["pending"] != org:
            raise ContractError(f"batch {batch_id!r} was not handed to {org}")
        entry = record_step(ctx, batch, org, step, location)
        batch["holder"] = org
        batch["pending"] = None
        ctx.put(batch_key(ctx, batch_id), batch)
        ctx.emit(
            "BatchReceived",
            {"batch_id": batch_id, "org": org, "step": entry["step"], "location": entry["location"]},
        )
        return batch

    @view
    def get_batch(self, batch_id):
        return load(self.ctx, batch_id)

    @view
    def provenance(self, batch_id):
        """Every step of the batch, oldest first."""
        ctx = self.ctx
        load(ctx, batch_id)
        return [entry for _, entry in ctx.prefix(ctx.composite_key("step", batch_id))]
