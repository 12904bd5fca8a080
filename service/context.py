"""Everything a request needs, built once per app by create_app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db import UnitOfWork
from service.domain.index_registry import IndexRegistry
from service.metrics import Metrics
from service.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    registry: IndexRegistry
    metrics: Metrics
    # Auth lookups on the hot path: token digest -> run id, run name -> id (both immutable).
    token_cache: dict[str, int] = field(default_factory=dict)
    run_ids_by_name: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """The request scope: commit when the block succeeds, roll back when it raises."""
        uow = UnitOfWork(self.session_factory())
        try:
            yield uow
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()
