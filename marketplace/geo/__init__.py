"""Geography: postcodes, their centroids, geocoding and distances."""
