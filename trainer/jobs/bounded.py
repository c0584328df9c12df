"""Concurrent requests with a bounded window: how `dhrd predict --server_url` and the teacher server client keep
memory flat on millions of rows. At most `in_flight` requests are pending; the next is sent as one comes back."""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from itertools import islice
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def bounded_completions(
    pool: Executor, call: Callable[[Item], Result], items: Iterable[Item], in_flight: int
) -> Iterator[tuple[Item, Result]]:
    """`(item, call(item))` in the order calls finish, with at most `in_flight` calls submitted at a time; `items`
    is read lazily. A failure is raised when its result is reached; pending calls are cancelled when the
    consumer stops."""
    items = iter(items)
    pending: dict[Future, Item] = {pool.submit(call, item): item for item in islice(items, in_flight)}
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                item = pending.pop(future)
                yield item, future.result()
            for item in islice(items, in_flight - len(pending)):
                pending[pool.submit(call, item)] = item
    finally:
        for future in pending:
            future.cancel()
