"""Small things every stage uses: locations, compressed strings."""
