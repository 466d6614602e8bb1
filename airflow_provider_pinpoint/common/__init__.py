"""Small things every stage uses: locations, file formats, Arrow masks, message text, compressed strings,
and the collector's pause while a command starts up."""
