"""Small things every stage uses: locations, file formats, Arrow masks, message text, compressed strings."""
