"""Geography tables: postcode and outcode centroids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, utcnow


class PostcodeCentroid(Base):
    """A full postcode ("SW1A 1AA") or an outward code ("SW1A") and its centroid."""

    __tablename__ = "postcode_centroids"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    source: Mapped[str] = mapped_column(String(20))  # builtin, ons, outcodes, postcodes.io
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
