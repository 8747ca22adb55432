"""The batch pipeline on a Dask cluster (``--dask tcp://scheduler:8786``, ``$FACEPRINT_DASK``).

:class:`DaskEngine` is a :class:`faceprint.batch.BatchEngine`: inside
``with faceprint.batch.using_engine(engine):`` every ``prepare_many`` / ``analyze_many`` --
so ``faceprint embed``, ``enroll``, ``cluster`` and ``eval`` -- sends its images to the cluster
instead of the local worker pool, and gets the same results back in the same order.

How the work is split:

* **Tasks are chunks** of :data:`CHUNK_SIZE` consecutive inputs. A worker decodes, detects,
  aligns **and embeds** its chunk (:func:`faceprint.batch.prepare_items`, the ``jobs=1`` path,
  embedding the chunk's faces in batches), so the client does none of the model work. A chunk
  is large enough that the scheduler's cost a task (about a millisecond) is under 1% of the
  work (~10 ms an image and more), small enough that results stream back steadily, that a
  retried chunk costs little, and that a couple of chunks a worker keep every worker busy.
* **Models load once a worker:** the client registers an :class:`AnalyzerPlugin` (a
  ``distributed.WorkerPlugin``) holding the :class:`faceprint.batch.WorkerSetup` the local pool
  also sends its workers (model names, run-time registered models, detection policy, image
  limits, ``min_score``, batch size); each worker builds its Analyzer from it once, and a worker
  that joins later (or replaces a dead one) gets the plugin too. The plugin's name is a hash of
  that setup, so the same configuration is registered once however many runs use it.
* **Inputs:** a ``transform`` (the evaluation's perturbations) is scattered to the workers
  once a run, not sent with every chunk. A path is sent as a path and read *by the worker*: the cluster must see the same
  files at the same paths (a shared file system). Arrays, bytes and file objects are sent as
  data (a file object is read by the client, within the Analyzer's limits).
* **Results stream back in input order:** at most :attr:`DaskEngine.chunks_in_flight` chunks
  are submitted and not yet yielded (inputs are read from the iterable only as room frees up);
  a reorder buffer over ``as_completed`` yields each chunk's results when all before it are
  out. Per-file errors are the ones the local path gives (the same :func:`faceprint.batch.prepare`
  runs on the worker).
* **Failures:** a worker that dies loses its chunks; the scheduler runs them again elsewhere
  (``distributed.scheduler.allowed-failures`` times). Nothing is written by a worker: enrolment
  and clustering commit each result in the client, in input order, so a retried chunk cannot
  store a face twice (and the gallery's image-hash check refuses a duplicate all the same).
* **Stopping:** Ctrl-C (``KeyboardInterrupt``), an error, or the caller closing the iterator
  cancels the chunks still queued or running.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import islice
from typing import Any

from faceprint.batch import (
    BatchItem,
    Prepared,
    Transform,
    WorkerSetup,
    batch_item,
    prepare_items,
    worker_setup,
)
from faceprint.errors import ClusterUnavailableError, InvalidArgumentError, import_optional
from faceprint.imageio import ImageSource
from faceprint.pipeline import Analyzer
from faceprint.types import ImageAnalysis

import_optional("distributed", "dask")  # MissingDependencyError naming `pip install 'faceprint[dask]'`

from distributed import Client, Future, WorkerPlugin, as_completed, get_worker  # noqa: E402
from distributed.scheduler import KilledWorker  # noqa: E402

logger = logging.getLogger(__name__)

#: Inputs a task: see the module docstring (measured: bench/README.md, 'Dask engine overhead').
CHUNK_SIZE = 8

#: How long to wait for the scheduler, and for its first worker, before giving up.
CONNECT_TIMEOUT = 10.0

#: The address forms accepted: ``[tcp|tls]://host:port`` or ``host:port`` (tcp).
_ADDRESS = re.compile(r"^(?:(?P<scheme>tcp|tls)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")

Result = tuple[Prepared, ImageAnalysis]


def check_address(address: str) -> str:
    """``address`` as a full scheduler address (``host:port`` becomes ``tcp://host:port``);
    :class:`InvalidArgumentError` (a usage error: the CLI exits 2) when it is not one."""
    text = address.strip()
    match = _ADDRESS.match(text)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise InvalidArgumentError(
            f"not a Dask scheduler address: {address!r} (expected tcp://HOST:PORT, e.g. tcp://scheduler:8786)",
            details={"address": address},
        )
    return text if match["scheme"] else f"tcp://{text}"


class AnalyzerPlugin(WorkerPlugin):
    """Builds the client's Analyzer once in each worker (and in every worker that joins later)."""

    idempotent = True  # its name is a hash of the setup: the same name is the same plugin

    def __init__(self, setup: WorkerSetup) -> None:
        self.spec = replace(setup, transform=None)  # the transform is scattered once a run
        self.name = "faceprint-analyzer-" + hashlib.sha256(pickle.dumps(self.spec)).hexdigest()[:16]
        self.analyzer: Analyzer | None = None
        #: One chunk at a time per worker process: the models (dlib's above all) are not safe to
        #: call from two threads at once, and a worker started with several threads would.
        self.lock: threading.Lock | None = None

    def setup(self, worker: Any) -> None:
        self.lock = threading.Lock()
        self.analyzer = self.spec.start()
        threads = int(getattr(getattr(worker, "state", None), "nthreads", 1) or 1)
        if threads > 1:
            logger.warning("Dask worker %s has %d threads: faceprint runs one chunk at a time in it (the models are not "
                           "thread-safe); start workers with --nthreads 1 and one process per core", worker.address,
                           threads)
        logger.info("Dask worker %s: %s ready (%s)", worker.address, self.analyzer.model_id, self.name)


def run_chunk(plugin_name: str, items: list[BatchItem], embed: bool, digest: bool,
              transform: Transform | None) -> list[Result]:
    """A task: one chunk prepared and (with ``embed``) embedded on a worker, in order."""
    plugin = get_worker().plugins[plugin_name]
    if not isinstance(plugin, AnalyzerPlugin) or plugin.analyzer is None or plugin.lock is None:  # pragma: no cover
        raise RuntimeError(f"worker plugin {plugin_name} is not set up")  # (setup() runs before any task)
    analyzer = plugin.analyzer
    chip = analyzer.embedder.chip if embed else None
    with plugin.lock:
        return list(prepare_items(analyzer, items, chip, embed, digest, transform))


class DaskEngine:
    """Runs the batch pipeline on the Dask cluster of ``client`` (see the module docstring)."""

    def __init__(self, client: Client, *, chunk_size: int = CHUNK_SIZE, chunks_in_flight: int | None = None) -> None:
        if chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size must be at least 1; got {chunk_size!r}")
        if chunks_in_flight is not None and chunks_in_flight < 1:
            raise InvalidArgumentError(f"chunks_in_flight must be at least 1; got {chunks_in_flight!r}")
        self.client = client
        self.chunk_size = chunk_size
        self.fixed_in_flight = chunks_in_flight
        self.plugins: set[str] = set()

    @classmethod
    @contextmanager
    def connect(cls, address: str, *, timeout: float = CONNECT_TIMEOUT, **options: Any) -> Iterator[DaskEngine]:
        """An engine on the scheduler at ``address``, closed at the end of the block.
        :class:`InvalidArgumentError` for a malformed address; :class:`ClusterUnavailableError`
        when the scheduler, or a worker of it, cannot be reached within ``timeout`` seconds."""
        address = check_address(address)
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnavailableError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({exc})",
                details={"address": address},
            ) from None
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                raise ClusterUnavailableError(
                    f"the Dask scheduler at {address} has no worker (waited {timeout:g} s)", details={"address": address}
                ) from None
            logger.info("Dask scheduler %s: %d workers, %d threads", address, len(client.nthreads()),
                        sum(client.nthreads().values()))
            yield cls(client, **options)
        finally:
            client.close()

    @property
    def chunks_in_flight(self) -> int:
        """Chunks submitted and not yet yielded: two a worker thread (one running, one
        queued, so no worker waits for the client) plus one."""
        if self.fixed_in_flight is not None:
            return self.fixed_in_flight
        return 2 * max(1, sum(self.client.nthreads().values())) + 1

    def plugin_for(self, setup: WorkerSetup) -> str:
        """Registers the plugin that builds ``setup``'s Analyzer on the workers; its name."""
        plugin = AnalyzerPlugin(setup)
        if plugin.name not in self.plugins:
            self.client.register_plugin(plugin, name=plugin.name)
            self.plugins.add(plugin.name)
        return plugin.name

    def prepare_many(self, analyzer: Analyzer, images: Iterable[ImageSource], *, embed: bool, digest: bool,
                     transform: Transform | None) -> Iterator[Result]:
        """:func:`faceprint.batch.prepare_many` on the cluster: the plugin is registered (and
        the Analyzer checked to pickle) before this returns."""
        setup = worker_setup(analyzer, transform)
        plugin = self.plugin_for(setup)
        items = (batch_item(analyzer, source) for source in images)
        return self._stream(plugin, items, embed, digest, transform)

    def _stream(self, plugin: str, items: Iterator[BatchItem], embed: bool, digest: bool,
                transform: Transform | None) -> Iterator[Result]:
        run = uuid.uuid4().hex[:12]
        limit = self.chunks_in_flight
        # Sent to each worker once, not with every chunk (the evaluation's holds a map of every file).
        shared: Future | None = self.client.scatter(transform, broadcast=True) if transform is not None else None
        pending: dict[Future, int] = {}  # submitted, not finished: future -> chunk number
        finished: dict[int, list[Result]] = {}  # the reorder buffer
        labels: dict[int, str] = {}  # each unfinished chunk's first input, for messages
        completed = as_completed(loop=self.client.loop)
        submitted = yielded = n_images = 0
        exhausted = done = False
        logger.info("Dask run %s: chunks of %d, up to %d in flight", run, self.chunk_size, limit)
        try:
            while True:
                while not exhausted and submitted - yielded < limit:
                    chunk = list(islice(items, self.chunk_size))
                    if not chunk:
                        exhausted = True
                        break
                    future = self.client.submit(run_chunk, plugin, chunk, embed, digest, shared,
                                                key=f"faceprint-{run}-{submitted}")
                    pending[future] = submitted
                    labels[submitted] = chunk[0].source if isinstance(chunk[0], Prepared) else chunk[0][0]
                    completed.add(future)
                    submitted += 1
                if yielded == submitted:
                    break
                while yielded not in finished:
                    future = next(completed)
                    index = pending.pop(future)
                    try:
                        finished[index] = future.result()
                    except KilledWorker:
                        raise RuntimeError(
                            f"Dask workers died on every try of the chunk starting at {labels[index]} "
                            "(killed, out of memory, or crashed)"
                        ) from None
                    future.release()
                results = finished.pop(yielded)
                del labels[yielded]
                yielded += 1
                n_images += len(results)
                yield from results
            done = True
        finally:
            if pending:
                self.client.cancel(list(pending))
            if shared is not None:
                shared.release()
            logger.info("Dask run %s %s after %d images", run, "done" if done else "stopped", n_images)


__all__ = ["CHUNK_SIZE", "CONNECT_TIMEOUT", "AnalyzerPlugin", "DaskEngine", "check_address", "run_chunk"]
