"""Private helpers shared across invnb's subpackages (argument checks, class targets, precision)."""

