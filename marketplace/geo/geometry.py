"""Great-circle distance and the bounding box that pre-filters candidates."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE_LATITUDE = math.pi * EARTH_RADIUS_KM / 180


@dataclass(frozen=True)
class Box:
    min_latitude: float
    max_latitude: float
    min_longitude: float
    max_longitude: float


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = math.radians(lat2 - lat1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(latitude: float, longitude: float, radius_km: float) -> Box:
    """A latitude/longitude box that contains every point within `radius_km` (UK latitudes)."""
    dlat = radius_km / KM_PER_DEGREE_LATITUDE
    widest = min(89.0, abs(latitude) + dlat)  # longitude degrees are shortest nearest the pole
    dlon = radius_km / (KM_PER_DEGREE_LATITUDE * math.cos(math.radians(widest)))
    return Box(latitude - dlat, latitude + dlat, longitude - dlon, longitude + dlon)
