"""Keeps the device fed in batch runs: images decode on CPU worker processes (or, on the CPU, on one thread beside
the network) and come out in batches of one size."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from torch.utils.data import DataLoader, Dataset

from fcn_viewer.errors import FCNViewerError

S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True)
class Decoded(Generic[T]):
    """Source number ``index``, decoded into ``value`` in ``seconds``."""

    index: int
    value: T
    seconds: float


@dataclass(frozen=True)
class Failed:
    """Source number ``index`` could not be decoded: ``error`` says why, naming the file."""

    index: int
    error: str


class _Decoding(Dataset[Decoded[T] | Failed], Generic[S, T]):
    """``decode(sources[index])`` as a DataLoader item; a decoding error comes back as an item instead of
    stopping the loader."""

    def __init__(self, sources: Sequence[S], decode: Callable[[S], T]) -> None:
        self.sources = sources
        self.decode = decode

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> Decoded[T] | Failed:
        started = time.perf_counter()
        try:
            value = self.decode(self.sources[index])
        except FCNViewerError as error:
            return Failed(index, str(error))
        return Decoded(index, value, time.perf_counter() - started)


def _as_is(item: Decoded[T] | Failed) -> Decoded[T] | Failed:
    return item  # the default would turn arrays into tensors


def decode_all(
    sources: Sequence[S], decode: Callable[[S], T], workers: int, prefetch: int
) -> Iterator[Decoded[T] | Failed]:
    """Every source decoded, on ``workers`` processes (``prefetch`` items ahead each), in the order they finish; or
    with 0 workers on one thread of this process, ``prefetch`` items ahead, in order (:func:`decode_ahead`)."""
    if workers == 0:
        return decode_ahead(sources, decode, prefetch)
    loader = DataLoader(
        _Decoding(sources, decode),
        batch_size=None,
        num_workers=workers,
        collate_fn=_as_is,  # type: ignore[arg-type]  # batch_size=None: one item at a time, not a list
        prefetch_factor=prefetch if workers else None,
        persistent_workers=False,
        in_order=False,  # a slow file does not hold back the ones decoded after it
    )
    return iter(loader)


@dataclass(frozen=True)
class _Raised:
    """An error other than a bad file (a bug, MemoryError) on the decoding thread, raised again in the consumer."""

    error: BaseException


def decode_ahead(sources: Sequence[S], decode: Callable[[S], T], ahead: int) -> Generator[Decoded[T] | Failed, None, None]:
    """Every source decoded in order on one background thread, at most ``ahead`` items ahead of the consumer.

    Decoding (Pillow releases the GIL) then overlaps the network, whose kernels release it too, without the
    processes that would take the cores the network uses on a CPU. Stopping early (an error, Ctrl-C) stops the
    thread after the item in hand."""
    decoding = _Decoding(sources, decode)
    items: queue.Queue[Decoded[T] | Failed | _Raised] = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def produce() -> None:
        for index in range(len(decoding)):
            try:
                item: Decoded[T] | Failed | _Raised = decoding[index]
            except BaseException as error:  # handed to the consumer, which raises it
                item = _Raised(error)
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or isinstance(item, _Raised):
                return

    thread = threading.Thread(target=produce, name="fcn-viewer decode", daemon=True)
    thread.start()
    try:
        for _ in range(len(decoding)):
            item = items.get()
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def group_by_size(
    items: Iterable[Decoded[T] | Failed], size: Callable[[T], Hashable], batch_size: int
) -> Generator[list[Decoded[T]] | Failed, None, None]:
    """Decoded items in batches of up to ``batch_size`` of one ``size``, failures on their own as they come.

    A batch goes as soon as it is full; when more than twice ``batch_size`` items wait in part-filled
    batches, the fullest goes early; the rest go at the end.
    """
    buckets: dict[Hashable, list[Decoded[T]]] = {}
    waiting = 0
    for item in items:
        if isinstance(item, Failed):
            yield item
            continue
        key = size(item.value)
        buckets.setdefault(key, []).append(item)
        waiting += 1
        if len(buckets[key]) < batch_size:
            if waiting <= 2 * batch_size:
                continue
            key = max(buckets, key=lambda k: len(buckets[k]))  # bounds memory: the fullest goes early
        batch = buckets.pop(key)
        waiting -= len(batch)
        yield batch
    yield from buckets.values()


def load_batches(
    sources: Sequence[S], decode: Callable[[S], T], size: Callable[[T], Hashable], batch_size: int, workers: int
) -> Generator[list[Decoded[T]] | Failed, None, None]:
    """:func:`decode_all` then :func:`group_by_size`, with a batch's worth of items being decoded ahead."""
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch size {batch_size} and workers {workers}: need a batch size ≥ 1 and workers ≥ 0")
    prefetch = max(2, math.ceil(batch_size / max(workers, 1)))
    return group_by_size(decode_all(sources, decode, workers, prefetch), size, batch_size)
