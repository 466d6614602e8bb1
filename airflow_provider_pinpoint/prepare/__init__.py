"""Tables in, requests out: read -> map and coerce columns -> validate -> reshape to JSON -> pack."""
