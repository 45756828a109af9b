"""Care requests, slots and bookings."""
