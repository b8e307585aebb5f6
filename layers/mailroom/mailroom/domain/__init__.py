"""Pure domain logic: no AWS, no I/O."""
