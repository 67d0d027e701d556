"""The `services` table and its read schema."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Boolean, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from opsbook.store.base import Base, UTCDateTime, utc_now

NAME_MAX = 255
ENVIRONMENT_MAX = 64
URL_MAX = 2048
OWNER_MAX = 255
TEAM_MAX = 255
TIER_MAX = 64


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    environment: Mapped[str] = mapped_column(String(ENVIRONMENT_MAX))
    url: Mapped[str | None] = mapped_column(String(URL_MAX))
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(OWNER_MAX))
    team: Mapped[str | None] = mapped_column(String(TEAM_MAX))
    tier: Mapped[str | None] = mapped_column(String(TIER_MAX))
    # Server defaults as well as Python ones: rows that predate these columns (and rows written
    # by hand) get the same values as rows opsbook inserts.
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    links: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    dependencies: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, onupdate=utc_now)

    def __repr__(self) -> str:
        return f"Service(id={self.id!r}, name={self.name!r}, environment={self.environment!r})"


class ServiceRead(BaseModel):
    """A service as other domains see it (they never touch the table)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    name: str
    environment: str
    url: str | None
    description: str | None
    owner: str | None
    team: str | None
    tier: str | None
    public: bool
    links: dict[str, str]
    dependencies: list[str]
    created_at: datetime
    updated_at: datetime
